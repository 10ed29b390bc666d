// Command informer watches one resource through kubekit's informer package
// and prints what happens, one line per event:
//
//	synced 3 objects
//	ADD default/web-1
//	UPDATE default/web-1
//	DELETE default/web-1
//
// Usage:
//
//	go run ./examples/informer --kubeconfig .kube.config -n default -n team-a -l app=web
//	go run ./examples/informer --resource deployments.apps --resync 30s
//	go run ./examples/informer --index label:app=web     # also prints "MATCH ns/name" lines after sync
//	go run ./examples/informer --index node=node-1       # Pods on node-1
//
// --resource takes a plural resource name, qualified by its group unless it
// is in the core group ("pods", "deployments.apps", "widgets.example.com");
// custom resources work the same way. --index KEY=VALUE uses one of the
// ready-made indexes: label:<key>=<value>, node=<nodeName> (Pods only),
// owner=<uid>, namespace=<ns>. The program runs until interrupted.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/informer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, pflag.ErrHelp) {
		return // --help: usage was printed, exit 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "informer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("informer", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	resource := fs.String("resource", "pods", `resource to watch: plural name, group-qualified outside the core group ("pods", "deployments.apps", "widgets.example.com")`)
	namespaces := fs.StringArrayP("namespace", "n", nil, "namespace to watch; repeat for several (default: all namespaces)")
	selector := fs.StringP("selector", "l", "", `label selector, e.g. "app=web,tier!=db"`)
	index := fs.String("index", "", "after sync, print the objects matching KEY=VALUE: label:<key>=<value>, node=<nodeName>, owner=<uid> or namespace=<ns>")
	resync := fs.Duration("resync", 0, "resync period: every period each object is delivered again as UPDATE (0 = never)")
	var kf client.Flags
	kf.BindPFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *resource == "" {
		return errors.New(`--resource: empty (e.g. "pods" or "deployments.apps")`)
	}
	indexName, idx, value, err := parseIndex(*index)
	if err != nil {
		return err
	}
	c, err := client.New(kf.Options()...)
	if err != nil {
		return err
	}
	opts := []informer.Option{informer.WithLabelSelector(*selector), informer.WithResync(*resync), informer.WithDropManagedFields(true)}
	if len(*namespaces) > 0 {
		opts = append(opts, informer.WithNamespaces(*namespaces...))
	}
	f, err := informer.New(c, opts...)
	if err != nil {
		return err
	}
	defer f.Shutdown()
	inf, err := informer.ForResource(ctx, f, schema.ParseGroupResource(*resource).WithVersion(""))
	if err != nil {
		return err
	}
	if idx != nil {
		if err := inf.AddIndex(*idx); err != nil {
			return err
		}
	}
	out := &printer{w: stdout}
	key := func(u *unstructured.Unstructured) string { return cache.MetaObjectToName(u).String() } // "ns/name" or "name"
	_, err = inf.AddHandler(informer.Handler[*unstructured.Unstructured]{
		OnAdd: func(u *unstructured.Unstructured, initial bool) {
			if !initial { // the initial list is summed up by "synced N objects"
				out.event("ADD " + key(u))
			}
		},
		OnUpdate: func(_, u *unstructured.Unstructured) { out.event("UPDATE " + key(u)) },
		OnDelete: func(u *unstructured.Unstructured) { out.event("DELETE " + key(u)) },
	})
	if err != nil {
		return err
	}
	f.Start(ctx)
	if err := f.WaitForSync(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // interrupted before the cache filled
		}
		return err
	}
	header := []string{fmt.Sprintf("synced %d objects", len(inf.Lister().Keys()))}
	if indexName != "" {
		matches, err := inf.Lister().ByIndex(indexName, value)
		if err != nil {
			return err
		}
		keys := make([]string, 0, len(matches))
		for _, u := range matches {
			keys = append(keys, key(u))
		}
		slices.Sort(keys)
		for _, k := range keys {
			header = append(header, "MATCH "+k)
		}
	}
	if err := out.synced(header); err != nil {
		return err
	}
	<-ctx.Done()
	f.Shutdown() // join the handler goroutines before reporting write errors
	return out.err()
}

// parseIndex turns --index KEY=VALUE into the index to query, the index to
// add (nil when every informer has it already) and the value to look up.
func parseIndex(s string) (string, *informer.Index, string, error) {
	if s == "" {
		return "", nil, "", nil
	}
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", nil, "", fmt.Errorf("--index %q: want KEY=VALUE, e.g. label:app=web or node=node-1", s)
	}
	var idx informer.Index
	switch {
	case strings.HasPrefix(k, "label:") && len(k) > len("label:"):
		idx = informer.ByLabel(strings.TrimPrefix(k, "label:"))
	case k == "node":
		idx = informer.PodsByNodeName()
	case k == "owner":
		idx = informer.ByOwnerUID()
	case k == "namespace":
		return informer.IndexNamespace, nil, v, nil
	default:
		return "", nil, "", fmt.Errorf("--index %q: unknown key %q (use label:<key>, node, owner or namespace)", s, k)
	}
	return idx.Name, &idx, v, nil
}

// printer holds event lines back until the "synced" header is out, so the
// output always starts with it.
type printer struct {
	mu      sync.Mutex
	w       io.Writer
	done    bool
	pending []string
	werr    error
}

func (p *printer) event(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.done {
		p.pending = append(p.pending, line)
		return
	}
	p.writeLocked(line)
}

func (p *printer) synced(header []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range append(header, p.pending...) {
		p.writeLocked(l)
	}
	p.pending, p.done = nil, true
	return p.werr
}

func (p *printer) writeLocked(line string) {
	if p.werr == nil {
		_, p.werr = fmt.Fprintln(p.w, line)
	}
}

func (p *printer) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.werr
}
