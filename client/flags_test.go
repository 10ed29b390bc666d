package client_test

import (
	"flag"
	"testing"

	"github.com/spf13/pflag"

	"github.com/kubekit/kubekit/client"
)

func TestFlags(t *testing.T) {
	var std client.Flags
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	std.BindFlags(fs)
	if err := fs.Parse([]string{"--kubeconfig", env.KubeconfigPath(), "--context", "kubekit-testenv"}); err != nil {
		t.Fatal(err)
	}
	var pf client.Flags
	pfs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	pf.BindPFlags(pfs)
	if err := pfs.Parse([]string{"--kubeconfig=" + env.KubeconfigPath(), "--context=nope"}); err != nil {
		t.Fatal(err)
	}
	if n := len((&client.Flags{}).Options()); n != 0 {
		t.Fatalf("unset flags gave %d options, want none", n)
	}
	c, err := client.New(std.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ServerVersion(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := client.New(pf.Options()...); err == nil {
		t.Fatal(`--context=nope: New succeeded, want an unknown-context error`)
	}
}
