// Command list lists any resource page by page, like
// "kubectl get --chunk-size", with memory bounded by one page, and creates
// objects in bulk with a bounded worker pool: the tutorial's 30,000
// Namespaces.
//
//	$ go run ./examples/list --create 30000 --prefix test --qps 500 --burst 500
//	created 30000, failed 0 in 59.23s
//	$ go run ./examples/list --resource namespaces --page-size 500
//	default
//	...
//	test30000
//	listed 30004 objects in 2.05s (61 pages)
//
// Listing prints one line per object, "namespace/name" or "name", then
// "listed N objects in Xs (P pages)". --resource takes a plural resource
// name, qualified by its group outside the core group ("namespaces",
// "configmaps", "deployments.apps", "widgets.example.com"); -n lists one
// namespace (default: all), -l filters by labels and --page-size is the
// number of objects per request (kubectl's --chunk-size, default 500).
//
// --create N --prefix P creates N objects named P00001... (numbers padded to
// the width of N, so they sort) with --workers requests in flight, throttled
// by the client-side rate limiter (--qps, --burst). Namespaced resources need
// -n. The objects have only metadata (Deployments also a one-container
// spec), so custom resources must accept that. Progress goes to stderr: a bar
// when it is a terminal, else a line at every tenth. It ends with
// "created N, failed M in Xs" on stdout; failures exit 1 with the first
// errors on stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubekit/kubekit/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, pflag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "list:", err)
		os.Exit(1)
	}
}

type flags struct {
	resource  string
	namespace string
	selector  string
	pageSize  int64
	create    int
	prefix    string
	workers   int
	qps       float32
	burst     int
	kube      client.Flags
}

func (f *flags) validate() error {
	var errs []error
	if f.resource == "" {
		errs = append(errs, errors.New(`--resource: empty; pass a plural resource name, e.g. "namespaces" or "deployments.apps"`))
	}
	if f.pageSize <= 0 {
		errs = append(errs, fmt.Errorf("--page-size=%d: must be > 0 (kubectl's --chunk-size=0, one unpaginated request, is not offered: it is what bounds memory)", f.pageSize))
	}
	if f.qps <= 0 {
		errs = append(errs, fmt.Errorf("--qps=%v: must be > 0", f.qps))
	}
	if f.burst <= 0 {
		errs = append(errs, fmt.Errorf("--burst=%d: must be > 0", f.burst))
	}
	if f.workers <= 0 {
		errs = append(errs, fmt.Errorf("--workers=%d: must be > 0", f.workers))
	}
	if f.create < 0 {
		errs = append(errs, fmt.Errorf("--create=%d: must be >= 0", f.create))
	}
	if f.create > 0 {
		// the longest name must be valid; a namespace name is a DNS label
		longest := f.prefix + strconv.Itoa(f.create)
		if msgs := validation.IsDNS1123Label(longest); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--prefix=%q: names like %q are invalid: %s; use lower-case letters, digits and '-', starting with a letter", f.prefix, longest, msgs[0]))
		}
		if f.selector != "" {
			errs = append(errs, errors.New("-l/--selector: applies to listing, not to --create; drop one of them"))
		}
	} else if f.prefix != "" {
		errs = append(errs, errors.New("--prefix: only used with --create N"))
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("list", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: list [flags]\n       list --create N --prefix P [flags]\n\nLists a resource page by page (memory bounded by one page), or creates N objects in bulk.\n\nFlags:\n%s", fs.FlagUsages())
	}
	var f flags
	fs.StringVar(&f.resource, "resource", "namespaces", `plural resource name, group-qualified outside the core group ("namespaces", "configmaps", "deployments.apps", "widgets.example.com")`)
	fs.StringVarP(&f.namespace, "namespace", "n", "", "namespace to list, or to create namespaced objects in (default: all namespaces when listing)")
	fs.StringVarP(&f.selector, "selector", "l", "", `label selector for listing, e.g. "app=web,tier!=db"`)
	fs.Int64Var(&f.pageSize, "page-size", client.DefaultPageSize, "objects per list request (kubectl's --chunk-size)")
	fs.IntVar(&f.create, "create", 0, "create this many objects instead of listing")
	fs.StringVar(&f.prefix, "prefix", "", "name prefix of the objects --create makes (names are PREFIX00001...)")
	fs.IntVar(&f.workers, "workers", 16, "concurrent create requests")
	fs.Float32Var(&f.qps, "qps", client.DefaultQPS, "client-side request rate limit (requests per second)")
	fs.IntVar(&f.burst, "burst", client.DefaultBurst, "client-side burst above --qps")
	f.kube.BindPFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := f.validate(); err != nil {
		return err
	}
	c, err := client.New(append(f.kube.Options(), client.WithQPS(f.qps), client.WithBurst(f.burst))...)
	if err != nil {
		return err
	}
	defer c.Close()
	m, err := mapping(c, f.resource)
	if err != nil {
		return err
	}
	namespaced := m.Scope.Name() == meta.RESTScopeNameNamespace
	if !namespaced && f.namespace != "" {
		return fmt.Errorf("-n %s: %s are not namespaced; drop -n", f.namespace, f.resource)
	}
	if f.create > 0 {
		if namespaced && f.namespace == "" {
			return fmt.Errorf("--create: %s are namespaced; pass -n NAMESPACE", f.resource)
		}
		return create(ctx, c, m, &f, stdout, stderr)
	}
	return list(ctx, c, m, &f, stdout)
}

// mapping resolves "deployments.apps" to its preferred version and kind.
func mapping(c *client.Client, resource string) (*meta.RESTMapping, error) {
	gvr := schema.ParseGroupResource(resource).WithVersion("")
	full, err := c.RESTMapper().ResourceFor(gvr)
	if err != nil {
		return nil, fmt.Errorf("--resource=%s: not served by the API server (a plural, lower-case name, group-qualified outside the core group, of an installed CRD?): %w", resource, err)
	}
	gvk, err := c.RESTMapper().KindFor(full)
	if err != nil {
		return nil, fmt.Errorf("--resource=%s: %w", resource, err)
	}
	m, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("--resource=%s: %w", resource, err)
	}
	return m, nil
}

// list streams the objects, printing each as it arrives.
func list(ctx context.Context, c *client.Client, m *meta.RESTMapping, f *flags, stdout io.Writer) error {
	start := time.Now()
	var info client.ListInfo
	opts := []client.ListOption{client.PageSize(f.pageSize), client.LabelSelector(f.selector), client.WithListInfo(&info)}
	ri := c.Dynamic().Resource(m.Resource)
	for obj, err := range client.ListDynamic(ctx, ri.Namespace(f.namespace), opts...) {
		if err != nil {
			return fmt.Errorf("list %s after %d objects: %w", f.resource, info.Items, err)
		}
		name := obj.GetName()
		if ns := obj.GetNamespace(); ns != "" {
			name = ns + "/" + name
		}
		if _, err := fmt.Fprintln(stdout, name); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(stdout, "listed %d objects in %.2fs (%d pages)\n", info.Items, time.Since(start).Seconds(), info.Pages)
	return err
}

// maxErrors is how many create errors are printed; the rest are counted.
const maxErrors = 5

// create makes f.create objects with f.workers goroutines; the client's rate
// limiter (shared by all of them) holds the rate to --qps and --burst.
func create(ctx context.Context, c *client.Client, m *meta.RESTMapping, f *flags, stdout, stderr io.Writer) error {
	start := time.Now()
	width := len(strconv.Itoa(f.create))
	jobs := make(chan int)
	results := make(chan error)
	var wg sync.WaitGroup
	for range min(f.workers, f.create) {
		wg.Go(func() {
			for i := range jobs {
				results <- c.Create(ctx, object(m, f, fmt.Sprintf("%s%0*d", f.prefix, width, i)))
			}
		})
	}
	go func() {
		defer close(jobs)
		for i := 1; i <= f.create; i++ {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()

	p := newProgress(stderr, f.create)
	var created, failed int
	var firstErrs []string
	for err := range results {
		if err != nil {
			failed++
			if len(firstErrs) < maxErrors {
				firstErrs = append(firstErrs, err.Error())
			}
		} else {
			created++
		}
		p.update(created, failed)
	}
	p.finish(created, failed)
	if _, err := fmt.Fprintf(stdout, "created %d, failed %d in %.2fs\n", created, failed, time.Since(start).Seconds()); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %d of %d objects not attempted", f.create-created-failed, f.create)
	}
	if failed > 0 {
		more := ""
		if failed > len(firstErrs) {
			more = fmt.Sprintf("\n  ... and %d more", failed-len(firstErrs))
		}
		return fmt.Errorf("%d of %d creates failed:\n  %s%s", failed, f.create, strings.Join(firstErrs, "\n  "), more)
	}
	return nil
}

// object is the object --create makes: only metadata, except Deployments,
// which need a selector and a Pod template.
func object(m *meta.RESTMapping, f *flags, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetGroupVersionKind(m.GroupVersionKind)
	u.SetName(name)
	u.SetNamespace(f.namespace)
	labels := map[string]string{"app.kubernetes.io/created-by": "kubekit-list"}
	u.SetLabels(labels)
	if m.GroupVersionKind.GroupKind() == (schema.GroupKind{Group: "apps", Kind: "Deployment"}) {
		u.Object["spec"] = map[string]any{
			"replicas": int64(0),
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "registry.k8s.io/pause:3.10"}}},
			},
		}
	}
	return u
}

// progress reports bulk-create progress on stderr: a bar redrawn in place
// (at most every 100ms) on a terminal, else a line at every tenth of total.
type progress struct {
	w        io.Writer
	tty      bool
	width    int // of the terminal
	total    int
	start    time.Time
	lastDraw time.Time
	lastStep int // tenths reported so far (plain mode)
}

func newProgress(w io.Writer, total int) *progress {
	p := &progress{w: w, total: total, start: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		p.width = 80
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			p.width = cols
		}
	}
	return p
}

func (p *progress) update(created, failed int) {
	done := created + failed
	if p.tty {
		if now := time.Now(); done == p.total || now.Sub(p.lastDraw) >= 100*time.Millisecond {
			p.lastDraw = now
			fmt.Fprint(p.w, "\r"+p.bar(created, failed))
		}
		return
	}
	if step := done * 10 / p.total; step > p.lastStep {
		p.lastStep = step
		fmt.Fprintf(p.w, "progress: %d/%d (%d%%), %d failed\n", done, p.total, done*100/p.total, failed)
	}
}

// finish ends the bar's line (the summary goes to stdout).
func (p *progress) finish(created, failed int) {
	if p.tty {
		fmt.Fprint(p.w, "\r"+p.bar(created, failed)+"\n")
	}
}

// bar renders "[=====>    ] 1234/30000  4% 812/s 0 failed" to fit the terminal.
func (p *progress) bar(created, failed int) string {
	done := created + failed
	rate := float64(done) / max(time.Since(p.start).Seconds(), 0.001)
	tail := fmt.Sprintf(" %d/%d %3d%% %.0f/s %d failed", done, p.total, done*100/p.total, rate, failed)
	n := p.width - len(tail) - 3 // brackets, and one column free so the line never wraps
	if n < 10 {
		return strings.TrimSpace(tail)
	}
	fill := n * done / p.total
	b := strings.Repeat("=", fill)
	if fill < n {
		b += ">" + strings.Repeat(" ", n-fill-1)
	}
	return "[" + b + "]" + tail
}
