// Command watch watches one resource through kubekit's watch package and
// prints one line per event, as it happens:
//
//	ADDED default/web-1 12345
//	MODIFIED default/web-1 12350
//	DELETED default/web-1 12351
//	DELETED default/old 12001 (resync)
//
// Cluster-scoped objects print just their name. Lines ending in " (resync)"
// are synthetic: after a gap the API server no longer remembers (410 Gone),
// the watch re-listed and reports what changed in between.
//
// Usage:
//
//	go run ./examples/watch --kubeconfig .kube.config --resource configmaps -n default
//	go run ./examples/watch --resource deployments.apps -l app=web --checkpoint /tmp/deploy.json
//
// --resource takes a plural resource name, qualified by its group unless it
// is in the core group ("pods", "deployments.apps", "widgets.example.com").
// With --checkpoint FILE the position is saved in FILE (and FILE.log): on
// SIGINT/SIGTERM the program saves it and exits 0, and the next run prints
// exactly what changed in between.
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
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/watch"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "watch:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("watch", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	resource := fs.String("resource", "configmaps", `resource to watch: plural name, group-qualified outside the core group ("pods", "deployments.apps", "widgets.example.com")`)
	namespace := fs.StringP("namespace", "n", "", "namespace to watch (default: all namespaces)")
	selector := fs.StringP("selector", "l", "", `label selector, e.g. "app=web,tier!=db"`)
	checkpoint := fs.String("checkpoint", "", "file that keeps the watch's position across runs (default: none, start with a list)")
	var kf client.Flags
	kf.BindPFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *resource == "" {
		return errors.New(`--resource: empty (e.g. "configmaps" or "deployments.apps")`)
	}
	opts := []watch.Option{watch.WithNamespace(*namespace), watch.WithLabelSelector(*selector)}
	if *checkpoint != "" {
		cp, err := watch.NewFileCheckpoint(*checkpoint)
		if err != nil {
			return fmt.Errorf("--checkpoint: %w", err)
		}
		opts = append(opts, watch.WithCheckpoint(cp))
	}
	c, err := client.New(kf.Options()...)
	if err != nil {
		return err
	}
	w, err := watch.NewForResource(ctx, c, schema.ParseGroupResource(*resource).WithVersion(""), opts...)
	if err != nil {
		return err
	}
	// Run returns nil on SIGINT/SIGTERM (ctx cancelled), after saving the checkpoint.
	return w.Run(ctx, func(_ context.Context, e watch.Event[*unstructured.Unstructured]) error {
		// "ns/name", or just "name" for cluster-scoped objects.
		line := fmt.Sprintf("%s %s %s", e.Type, cache.MetaObjectToName(e.Object), e.Object.GetResourceVersion())
		if e.Synthetic {
			line += " (resync)"
		}
		// A failed write (closed pipe) is returned so the event is retried
		// and, if it keeps failing, not checkpointed as printed.
		_, err := fmt.Fprintln(stdout, line)
		return err
	})
}
