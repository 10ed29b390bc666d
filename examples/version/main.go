// Command version prints the API server's version as JSON, like the
// serverVersion part of "kubectl version -o json".
//
//	go run ./examples/version --kubeconfig .kube.config
//	go run ./examples/version --in-cluster        # inside a Pod
//
// It connects with kubekit's client package: the kubeconfig search order,
// contexts, in-cluster configuration and timeouts all come from there.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/kubekit/kubekit/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, pflag.ErrHelp) {
		return // --help: usage was printed, exit 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "version:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("version", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var kf client.Flags
	kf.BindPFlags(fs)
	inCluster := fs.Bool("in-cluster", false, "use the Pod's service account instead of a kubeconfig")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long (0 = no limit)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	opts := kf.Options()
	if *inCluster {
		opts = append(opts, client.WithInCluster())
	}
	if *timeout < 0 {
		return fmt.Errorf("--timeout=%v: must be >= 0", *timeout)
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	c, err := client.New(opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	v, err := c.ServerVersion(ctx)
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}
