package informer

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/kubekit/kubekit/client"
)

// Errors callers can test with errors.Is.
var (
	// ErrShutdown is returned when an informer is requested from a factory
	// that has been shut down.
	ErrShutdown = errors.New("informer: factory is shut down")
	// ErrNotStarted is returned by WaitForSync before Start.
	ErrNotStarted = errors.New("informer: factory not started (call Start first)")
	// ErrNotWatched is returned by Lister.Get and Lister.ListInNamespace for
	// a namespace the factory does not watch (see WithNamespaces).
	ErrNotWatched = errors.New("namespace not watched by this factory")
	// ErrUnknownIndex is returned by Lister.ByIndex for an index that was
	// never added.
	ErrUnknownIndex = errors.New("unknown index")
)

// Factory creates and runs shared informers for one API server. Informers
// are shared: For[*corev1.Pod] called twice returns informers backed by the
// same caches and watches. A Factory is safe for concurrent use.
type Factory struct {
	opts options
	c    *client.Client
	dyn  dynamic.Interface
	meta metadata.Interface
	log  logr.Logger

	mu       sync.Mutex
	metrics  *metricNames // nil without WithMetrics
	entries  map[entryKey]*entry
	rest     map[schema.GroupVersion]rest.Interface
	ctx      context.Context // set by Start
	cancel   context.CancelFunc
	shutdown bool
	wg       sync.WaitGroup
}

type entryKey struct {
	gvr  schema.GroupVersionResource
	kind cacheKind
}

// cacheKind is what an entry's caches hold: typed objects, unstructured
// ones, or metadata only. Each kind has its own watches.
type cacheKind int

const (
	typedCache cacheKind = iota
	dynamicCache
	metadataCache
)

// entry is one resource: one SharedIndexInformer per watched namespace ("" for
// all namespaces or a cluster-scoped resource).
type entry struct {
	gvr        schema.GroupVersionResource
	namespaced bool
	namespaces []string // sorted keys of informers
	informers  map[string]cache.SharedIndexInformer
	started    bool

	errMu     sync.Mutex
	lastErr   map[string]error // last list/watch error per namespace, for WaitForSync
	permanent map[string]error // first error retrying cannot fix, per namespace
	failed    chan struct{}    // closed with the first permanent error
}

func (e *entry) recordError(ns string, err error) {
	e.errMu.Lock()
	defer e.errMu.Unlock()
	e.lastErr[ns] = err
	if _, seen := e.permanent[ns]; !seen && Permanent(err) {
		e.permanent[ns] = err
		if len(e.permanent) == 1 {
			close(e.failed)
		}
	}
}

// permanentError returns the permanent error of an informer that has not
// synced, if any.
func (e *entry) permanentError() (string, error) {
	e.errMu.Lock()
	defer e.errMu.Unlock()
	for _, ns := range e.namespaces {
		if err := e.permanent[ns]; err != nil && !e.informers[ns].HasSynced() {
			return describe(e.gvr, ns, e.namespaced), err
		}
	}
	return "", nil
}

// Permanent reports whether a list or watch error is one that retrying
// cannot fix, so [Factory.WaitForSync] returns it at once instead of
// waiting: 400 Bad Request (an unsupported field selector), 403 Forbidden
// (RBAC: grant list and watch, then start again), 405 Method Not Allowed,
// 406 Not Acceptable, 415 Unsupported Media Type and 422 Invalid. Everything
// else is transient and WaitForSync keeps waiting while client-go retries
// with backoff, bounded by its ctx: connection errors, timeouts, 401
// Unauthorized (credential plugins and rotated tokens refresh on it), 404 Not
// Found (a deleted CRD may come back), 410 Gone (client-go re-lists), 429
// Too Many Requests and 5xx.
func Permanent(err error) bool {
	switch {
	case apierrors.IsBadRequest(err), apierrors.IsForbidden(err), apierrors.IsMethodNotSupported(err),
		apierrors.IsNotAcceptable(err), apierrors.IsUnsupportedMediaType(err), apierrors.IsInvalid(err):
		return true
	}
	return false
}

// describe names the informer for namespace ns, with its last list/watch
// error if it has not synced.
func (e *entry) describe(ns string) string {
	s := describe(e.gvr, ns, e.namespaced)
	e.errMu.Lock()
	defer e.errMu.Unlock()
	if err := e.lastErr[ns]; err != nil && !e.informers[ns].HasSynced() {
		s += fmt.Sprintf(" (last error: %v)", err)
	}
	return s
}

// New builds a Factory from a kubekit client. Nothing talks to the API
// server until an informer is requested ([For], [ForResource]) and the
// factory is started ([Factory.Start]).
//
// The informers use c's configuration and connection pool but not its
// whole-request timeout (client.WithTimeout): a timeout on rest.Config would
// cut every watch stream after that long, so the factory's clients are built
// from c.StreamingConfig(). Watches are still bounded by the
// API server's --min-request-timeout and are resumed by client-go.
func New(c *client.Client, opts ...Option) (*Factory, error) {
	if c == nil {
		return nil, errors.New("informer: New(nil): pass a client from client.New")
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	cfg, hc := c.StreamingConfig()
	dyn, err := dynamic.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("informer: %w", err)
	}
	mc, err := metadata.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("informer: %w", err)
	}
	names, err := newMetricNames(&o)
	if err != nil {
		return nil, err
	}
	return &Factory{
		metrics: names,
		opts:    o,
		c:       c,
		dyn:     dyn,
		meta:    mc,
		log:     c.Logger().WithName("informer"),
		entries: map[entryKey]*entry{},
		rest:    map[schema.GroupVersion]rest.Interface{},
	}, nil
}

// Start runs every informer requested so far in the background and returns
// at once; informers requested later start as soon as they are created. It
// does not wait for caches to fill: call [Factory.WaitForSync]. The
// informers stop when ctx is cancelled or [Factory.Shutdown] is called.
// Calling Start again is a no-op.
func (f *Factory) Start(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shutdown || f.ctx != nil {
		return
	}
	if _, err := logr.FromContext(ctx); err != nil && f.log.GetSink() != nil {
		ctx = klog.NewContext(ctx, f.log) // client-go's informers log through ctx
	}
	f.ctx, f.cancel = context.WithCancel(ctx)
	for _, e := range f.entries {
		f.startLocked(e)
	}
}

func (f *Factory) startLocked(e *entry) {
	if f.ctx == nil || e.started {
		return
	}
	e.started = true
	for _, inf := range e.informers {
		f.wg.Go(func() { inf.RunWithContext(f.ctx) })
	}
}

// WaitForSync blocks until every started informer has listed its objects
// once, until one fails with an error that retrying cannot fix (see
// [Permanent]; the error names the resource and wraps the API error, so
// apierrors.IsForbidden and the like work), or until ctx is done. Transient
// errors keep it waiting while client-go retries. On ctx's end the error
// names each resource and namespace that did not sync, with its last error,
// and wraps ctx's error (context.Cause).
func (f *Factory) WaitForSync(ctx context.Context) error {
	f.mu.Lock()
	if f.ctx == nil {
		f.mu.Unlock()
		return ErrNotStarted
	}
	entries := make([]*entry, 0, len(f.entries))
	for _, e := range f.entries {
		entries = append(entries, e)
	}
	fctx := f.ctx
	f.mu.Unlock()
	return waitSynced(ctx, fctx, entries...)
}

// waitSynced waits for the entries' informers without polling, stopping
// early when ctx or the factory's context ends or an informer fails
// permanently.
func waitSynced(ctx, fctx context.Context, entries ...*entry) error {
	failed := make(chan struct{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	var once sync.Once
	for _, e := range entries {
		wg.Go(func() {
			select {
			case <-e.failed:
				once.Do(func() { close(failed) })
			case <-stop:
			}
		})
	}
wait:
	for _, e := range entries {
		for _, inf := range e.informers {
			select {
			case <-inf.HasSyncedChecker().Done():
			case <-ctx.Done():
				break wait
			case <-fctx.Done():
				break wait
			case <-failed:
				break wait
			}
		}
	}
	for _, e := range entries {
		if what, err := e.permanentError(); err != nil {
			return fmt.Errorf("informer: %s cannot sync: the API server refused the list and retrying cannot fix it (check the selectors given to New and the RBAC rules for list and watch): %w", what, err)
		}
	}
	var missing []string
	for _, e := range entries {
		for _, ns := range e.namespaces {
			if !e.informers[ns].HasSynced() {
				missing = append(missing, e.describe(ns))
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	cause := context.Cause(ctx)
	if cause == nil {
		cause = fmt.Errorf("factory stopped: %w", context.Cause(fctx))
	}
	return fmt.Errorf("informer: not synced: %s: %w", strings.Join(missing, "; "), cause)
}

func describe(gvr schema.GroupVersionResource, ns string, namespaced bool) string {
	r := gvr.GroupResource().String()
	switch {
	case !namespaced:
		return r
	case ns == "":
		return r + " (all namespaces)"
	default:
		return r + " in " + ns
	}
}

// Shutdown stops every informer and waits until all their goroutines,
// including those running event handlers, have returned. A handler that
// blocks forever therefore blocks Shutdown. After Shutdown, For and
// ForResource return ErrShutdown. Shutdown is idempotent and may be called
// without Start.
func (f *Factory) Shutdown() {
	f.mu.Lock()
	f.shutdown = true
	if f.cancel != nil {
		f.cancel()
	}
	names := f.metrics
	f.metrics = nil
	f.mu.Unlock()
	f.wg.Wait()
	names.release()
}

// informerFor returns the entry for gvr, creating its informers if needed.
// example is the object type the informer stores.
func (f *Factory) informerFor(gvr schema.GroupVersionResource, namespaced bool, example runtime.Object) (*entry, error) {
	kind := typedCache
	switch example.(type) {
	case interface{ UnstructuredContent() map[string]any }:
		kind = dynamicCache
	case *metav1.PartialObjectMetadata:
		kind = metadataCache
	}
	key := entryKey{gvr, kind}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shutdown {
		return nil, ErrShutdown
	}
	if e, ok := f.entries[key]; ok {
		return e, nil
	}
	namespaces := []string{metav1.NamespaceAll}
	if namespaced && len(f.opts.namespaces) > 0 {
		namespaces = f.opts.namespaces
	}
	resync := f.opts.resync
	if d, ok := f.opts.resyncFor[gvr.GroupResource()]; ok {
		resync = d
	}
	e := &entry{gvr: gvr, namespaced: namespaced, namespaces: namespaces, informers: map[string]cache.SharedIndexInformer{},
		lastErr: map[string]error{}, permanent: map[string]error{}, failed: make(chan struct{})}
	for _, ns := range namespaces {
		opts := cache.SharedIndexInformerOptions{
			ResyncPeriod:            resync,
			Indexers:                defaultIndexers(),
			ObjectDescription:       gvr.String(),
			Identifier:              f.metrics.identifier(gvr, ns),
			InformerMetricsProvider: f.opts.metricsProvider,
		}
		var inf cache.SharedIndexInformer
		switch kind {
		case dynamicCache:
			inf = cache.NewSharedIndexInformerWithOptions(f.dynamicListWatch(gvr, ns), &unstructured.Unstructured{}, opts)
		case metadataCache:
			inf = cache.NewSharedIndexInformerWithOptions(f.metadataListWatch(gvr, ns), &metav1.PartialObjectMetadata{}, opts)
		default:
			rc, err := f.restClientLocked(gvr.GroupVersion())
			if err != nil {
				return nil, err
			}
			lw := cache.NewFilteredListWatchFromClient(rc, gvr.Resource, ns, f.tweak)
			inf = cache.NewSharedIndexInformerWithOptions(lw, example, opts)
		}
		if t := f.transform(kind); t != nil {
			if err := inf.SetTransform(t); err != nil {
				return nil, fmt.Errorf("informer: %s: %w", gvr, err)
			}
		}
		err := inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
			e.recordError(ns, err)
			cache.DefaultWatchErrorHandler(ctx, r, err)
		})
		if err != nil {
			return nil, fmt.Errorf("informer: %s: %w", gvr, err)
		}
		e.informers[ns] = inf
	}
	f.entries[key] = e
	f.startLocked(e)
	f.log.V(1).Info("informer created", "resource", gvr.String(), "namespaces", namespaces, "resync", resync, "started", e.started)
	return e, nil
}

func (f *Factory) tweak(lo *metav1.ListOptions) {
	if !f.opts.labels.Empty() {
		lo.LabelSelector = f.opts.labels.String()
	}
	if !f.opts.fields.Empty() {
		lo.FieldSelector = f.opts.fields.String()
	}
}

func (f *Factory) transform(kind cacheKind) cache.TransformFunc {
	user := f.opts.transform
	drop := f.opts.dropManaged || (kind == metadataCache && !f.opts.dropManagedSet)
	switch {
	case drop && user != nil:
		return func(obj any) (any, error) {
			obj, _ = DropManagedFields(obj)
			return user(obj)
		}
	case drop:
		return DropManagedFields
	default:
		return user
	}
}

// restClientLocked returns a RESTClient for gv that decodes into client-go's
// scheme types, like the generated clientsets.
func (f *Factory) restClientLocked(gv schema.GroupVersion) (rest.Interface, error) {
	if rc, ok := f.rest[gv]; ok {
		return rc, nil
	}
	rc, err := f.c.StreamingRESTClientFor(gv)
	if err != nil {
		return nil, fmt.Errorf("informer: %w", err)
	}
	f.rest[gv] = rc
	return rc, nil
}

// resolveType maps a Go type registered in client-go's scheme to its
// resource through the RESTMapper.
func (f *Factory) resolveType(ctx context.Context, t reflect.Type) (runtime.Object, schema.GroupVersionResource, bool, error) {
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, schema.GroupVersionResource{}, false, fmt.Errorf("informer: For[%v]: the type must be a pointer to an API struct, e.g. For[*corev1.Pod]", t)
	}
	obj, ok := reflect.New(t.Elem()).Interface().(runtime.Object)
	if !ok {
		return nil, schema.GroupVersionResource{}, false, fmt.Errorf("informer: For[%v]: not a runtime.Object", t)
	}
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return nil, schema.GroupVersionResource{}, false, fmt.Errorf("informer: For[%v]: type not registered in client-go's scheme (k8s.io/client-go/kubernetes/scheme); for custom resources use ForResource: %w", t, err)
	}
	m, err := f.c.MappingForKind(ctx, gvks[0])
	if err != nil {
		return nil, schema.GroupVersionResource{}, false, fmt.Errorf("informer: For[%v]: %w", t, err)
	}
	return obj, m.Resource, m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// resolveResource checks that gvr is served and finds its scope. An empty
// version picks the server's preferred one.
func (f *Factory) resolveResource(ctx context.Context, fn string, gvr schema.GroupVersionResource) (schema.GroupVersionResource, bool, error) {
	if gvr.Resource == "" {
		return gvr, false, fmt.Errorf("informer: %s(%q): empty resource name, e.g. {Group: \"apps\", Version: \"v1\", Resource: \"deployments\"}", fn, gvr)
	}
	m, err := f.c.MappingForResource(ctx, gvr)
	if err != nil {
		return gvr, false, fmt.Errorf("informer: %s(%s): %w", fn, client.FormatResource(gvr), err)
	}
	full := m.Resource
	return full, m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}
