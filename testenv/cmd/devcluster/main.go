// Command devcluster runs kubekit's test control plane (etcd and
// kube-apiserver built by "make testbin") until interrupted, and writes a
// kubeconfig for it. "make cluster" runs it:
//
//	go run ./testenv/cmd/devcluster --kubeconfig .kube.config
//	kubectl --kubeconfig .kube.config get ns
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kubekit/kubekit/testenv"
)

type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devcluster:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("devcluster", flag.ContinueOnError)
	out := fs.String("kubeconfig", ".kube.config", "where to write the admin kubeconfig")
	var apiFlags stringList
	fs.Var(&apiFlags, "apiserver-flag", "extra kube-apiserver flag, e.g. --apiserver-flag=--min-request-timeout=5 (repeatable)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	abs, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	// Remove a stale file first: its appearance is the readiness signal
	// scripts wait for.
	if err := os.Remove(abs); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintln(os.Stderr, "devcluster: starting etcd and kube-apiserver", testenv.KubernetesVersion, "...")
	start := time.Now()
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	env, err := testenv.Start(startCtx, testenv.WithAPIServerFlags(apiFlags...))
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(os.Stderr, "devcluster: stopping")
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "devcluster: stop:", err)
		}
		_ = os.Remove(abs)
	}()
	tmp := abs + ".tmp"
	if err := testenv.WriteKubeconfig(env.Config(), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, abs); err != nil {
		return err
	}
	fmt.Printf("devcluster: kube-apiserver %s ready at %s after %s\n", testenv.KubernetesVersion, env.Host(), time.Since(start).Round(100*time.Millisecond))
	fmt.Printf("devcluster: kubeconfig written to %s\n", abs)
	fmt.Printf("  kubectl --kubeconfig %s get ns\n  export KUBECONFIG=%s\n", *out, abs)
	fmt.Println("devcluster: press Ctrl-C to stop (etcd data is discarded)")
	<-ctx.Done()
	return nil
}
