// Command logging shows kubekit's logging package: one zap-backed logger for
// the program and for client-go's own klog output, with one verbosity knob.
//
//	go run ./examples/logging --kubeconfig .kube.config            # V(0) lines
//	go run ./examples/logging --kubeconfig .kube.config -v 3       # + V(1..3)
//	go run ./examples/logging -v 6 --log-format json --log-file app.log
//	                                        # + client-go's request lines
//	go run ./examples/logging --help        # only this program's flags
//
// It logs the API server's version with klog.InfoS (routed into zap),
// a few V(1..3) lines, and prints the version on stdout.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, pflag.ErrHelp) {
		return // --help: usage was printed, exit 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "logging:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("logging", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: logging [flags]\n\nLogs the API server's version through one zap logger, client-go's lines included.\n\nFlags:\n%s", fs.FlagUsages())
	}
	lf := logging.Flags{Format: logging.FormatConsole} // a terminal program: console by default
	lf.BindPFlags(fs)
	var kf client.Flags
	kf.BindPFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	log, err := logging.New(logging.WithFlags(&lf), logging.WithOutput(stderr))
	if err != nil {
		return err
	}
	defer log.Close()
	// Before any client exists: client-go picks its debugging transport
	// when the client is built, from klog's verbosity.
	restore, err := log.RouteKlog()
	if err != nil {
		return err
	}
	defer restore()

	opts := []client.Option{client.WithLogger(log.WithName("client"))}
	opts = append(opts, kf.Options()...)
	c, err := client.New(opts...)
	if err != nil {
		return err
	}
	defer c.Close()

	klog.V(1).InfoS("Connecting", "host", c.Config().Host)
	v, err := c.ServerVersion(ctx)
	if err != nil {
		klog.ErrorS(err, "Failed to get the Kubernetes server version", "host", c.Config().Host)
		return err
	}
	klog.InfoS("Kubernetes server info", "version", v.GitVersion, "platform", v.Platform, "goVersion", v.GoVersion)
	klog.V(1).InfoS("I am a V(1) line")
	log.V(2).Info("Kubernetes server details", "major", v.Major, "minor", v.Minor, "gitCommit", v.GitCommit, "buildDate", v.BuildDate)
	klog.V(3).InfoS("I am a V(3) line")

	_, err = fmt.Fprintln(stdout, v.GitVersion)
	return err
}
