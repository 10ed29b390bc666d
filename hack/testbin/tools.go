//go:build tools

// Package testbin only pins the main packages built by build.sh.
package testbin

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
