package client

import (
	"flag"

	"github.com/spf13/pflag"
)

// Flags holds the connection flags every command-line program needs,
// --kubeconfig and --context, bound to a flag set the caller passes (nothing
// is registered on import). Options turns them into options for [New]:
//
//	var kf client.Flags
//	kf.BindPFlags(cmd.Flags())
//	...
//	c, err := client.New(kf.Options()...)
type Flags struct {
	// Kubeconfig is the --kubeconfig path; empty means the default search.
	Kubeconfig string
	// Context is the --context name; empty means the current context.
	Context string
}

const (
	kubeconfigUsage = "path to a kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)"
	contextUsage    = "kubeconfig context to use (default: the current context)"
)

// BindFlags adds --kubeconfig and --context to a standard library flag set.
func (f *Flags) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.Kubeconfig, "kubeconfig", f.Kubeconfig, kubeconfigUsage)
	fs.StringVar(&f.Context, "context", f.Context, contextUsage)
}

// BindPFlags adds --kubeconfig and --context to a pflag (cobra) flag set.
func (f *Flags) BindPFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.Kubeconfig, "kubeconfig", f.Kubeconfig, kubeconfigUsage)
	fs.StringVar(&f.Context, "context", f.Context, contextUsage)
}

// Options returns WithKubeconfig and WithKubeContext for the flags that were
// set, so unset flags leave New's default search alone.
func (f *Flags) Options() []Option {
	var opts []Option
	if f.Kubeconfig != "" {
		opts = append(opts, WithKubeconfig(f.Kubeconfig))
	}
	if f.Context != "" {
		opts = append(opts, WithKubeContext(f.Context))
	}
	return opts
}
