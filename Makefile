# kubekit: the two commands a newcomer needs are "make demo" and "make test".
SHELL := /bin/bash
K8S_VERSION := v1.37.2
TESTBIN := bin/k8s-$(K8S_VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GO_TEST_FLAGS ?=

.PHONY: all testbin cluster demo test lint bench fuzz clean

all: test

## testbin: build kube-apiserver and etcd from the pinned modules (idempotent; ~6 min cold)
testbin:
	@hack/testbin/build.sh

## cluster: run the test control plane until Ctrl-C and write ./.kube.config
cluster: testbin
	@go build -o bin/devcluster ./testenv/cmd/devcluster
	@bin/devcluster --kubeconfig .kube.config

## demo: start a control plane, run every example program against it, stop it
demo: testbin
	@hack/demo.sh

## test: run every test (unit and integration against a real kube-apiserver) with the race detector
test: testbin
	go test -race -count=1 $(GO_TEST_FLAGS) ./...
	cd testenv/testdata/outside && go test -race -count=1 $(GO_TEST_FLAGS) ./...

## lint: go vet and a pinned staticcheck
lint:
	go vet ./...
	cd testenv/testdata/outside && go vet ./...
	go run $(STATICCHECK) ./...

## bench: benchmarks (ratios against plain client-go, same run); writes BENCHMARKS.md
bench: testbin
	@hack/bench.sh

## fuzz: every fuzz target of the module for FUZZTIME each (default 30s)
FUZZTIME ?= 30s
fuzz: testbin
	@FUZZTIME=$(FUZZTIME) hack/fuzz.sh

clean:
	rm -rf bin .kube.config
