package informer

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/kubekit/kubekit/client"
)

// Object is what informers store: an API object with metadata, such as
// *corev1.Pod, *unstructured.Unstructured or *metav1.PartialObjectMetadata.
// It is [client.Object], the one object interface of kubekit.
type Object = client.Object

// Informer is a typed view of one resource's shared informers (one per
// watched namespace). Get it from [For] or [ForResource]; it is safe for
// concurrent use.
type Informer[T Object] struct {
	f *Factory
	e *entry
}

// For returns the shared informer for the API type T, e.g.
// For[*corev1.Pod](ctx, f). T must be registered in client-go's scheme
// (k8s.io/client-go/kubernetes/scheme); its resource is found through the
// client's RESTMapper, which may ask the API server (discovery is cached):
// ctx bounds that request, and a server that cannot be reached gives its
// connection error, not "not served". Use [ForResource] for custom
// resources. Calling For again for the same T returns an Informer backed by
// the same caches. An informer requested after [Factory.Start] starts at
// once.
func For[T Object](ctx context.Context, f *Factory) (*Informer[T], error) {
	if f == nil {
		return nil, errors.New("informer: For(ctx, nil): pass a factory from informer.New")
	}
	t := reflect.TypeFor[T]()
	if t == reflect.TypeFor[*unstructured.Unstructured]() {
		return nil, errors.New("informer: For[*unstructured.Unstructured]: the type does not name a resource; use ForResource(ctx, f, gvr)")
	}
	example, gvr, namespaced, err := f.resolveType(ctx, t)
	if err != nil {
		return nil, err
	}
	e, err := f.informerFor(gvr, namespaced, example)
	if err != nil {
		return nil, err
	}
	return &Informer[T]{f: f, e: e}, nil
}

// ForResource returns a dynamic informer for any resource the API server
// serves, custom resources included, e.g.
// ForResource(ctx, f, schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}).
// An empty Version picks the server's preferred version. An unknown
// resource is an error naming it; ctx bounds the discovery request, as for
// [For]. A dynamic informer and a typed one (For) of the same resource are
// separate caches with separate watches.
func ForResource(ctx context.Context, f *Factory, gvr schema.GroupVersionResource) (*Informer[*unstructured.Unstructured], error) {
	if f == nil {
		return nil, errors.New("informer: ForResource(ctx, nil, gvr): pass a factory from informer.New")
	}
	full, namespaced, err := f.resolveResource(ctx, "ForResource", gvr)
	if err != nil {
		return nil, err
	}
	e, err := f.informerFor(full, namespaced, &unstructured.Unstructured{})
	if err != nil {
		return nil, err
	}
	return &Informer[*unstructured.Unstructured]{f: f, e: e}, nil
}

// ForMetadata returns an informer that caches only the metadata of a
// resource (names, labels, annotations, owner references, finalizers...) as
// *metav1.PartialObjectMetadata: no spec, no status, a fraction of the memory
// of [For] (for Pods, the benchmark in this package measures it). Use it
// when a controller needs to know which objects exist, to follow owners, or
// to select by label, and reads the few full objects it acts on with a Get.
// It takes any resource, custom resources included:
//
//	pods, err := informer.ForMetadata(ctx, f, corev1.SchemeGroupVersion.WithResource("pods"))
//	p, err := pods.Lister().Get("default", "web-0") // *metav1.PartialObjectMetadata
//
// An empty Version picks the server's preferred one; ctx bounds the
// discovery request, as for [For]. Metadata, typed and
// dynamic informers of one resource are separate caches with separate
// watches. The factory's selectors, namespaces, resync and transforms apply.
func ForMetadata(ctx context.Context, f *Factory, gvr schema.GroupVersionResource) (*Informer[*metav1.PartialObjectMetadata], error) {
	if f == nil {
		return nil, errors.New("informer: ForMetadata(ctx, nil, gvr): pass a factory from informer.New")
	}
	full, namespaced, err := f.resolveResource(ctx, "ForMetadata", gvr)
	if err != nil {
		return nil, err
	}
	e, err := f.informerFor(full, namespaced, &metav1.PartialObjectMetadata{})
	if err != nil {
		return nil, err
	}
	return &Informer[*metav1.PartialObjectMetadata]{f: f, e: e}, nil
}

// Resource returns the informer's resource.
func (i *Informer[T]) Resource() schema.GroupVersionResource { return i.e.gvr }

// Lister returns the typed read access to the informer's cache.
func (i *Informer[T]) Lister() *Lister[T] {
	l := &Lister[T]{e: i.e, gr: i.e.gvr.GroupResource(), byNamespace: map[string]cache.Indexer{}}
	for ns, inf := range i.e.informers {
		l.byNamespace[ns] = inf.GetIndexer()
	}
	l.all = l.byNamespace[""]
	return l
}

// Informers returns the underlying client-go informers, keyed by namespace
// ("" when one informer watches all namespaces or the resource is
// cluster-scoped), for code that needs client-go's own API.
func (i *Informer[T]) Informers() map[string]cache.SharedIndexInformer {
	m := make(map[string]cache.SharedIndexInformer, len(i.e.informers))
	for ns, inf := range i.e.informers {
		m[ns] = inf
	}
	return m
}

// HasSynced reports whether every namespace's informer has listed its
// objects once.
func (i *Informer[T]) HasSynced() bool {
	for _, inf := range i.e.informers {
		if !inf.HasSynced() {
			return false
		}
	}
	return true
}

// WaitForSync waits until [Informer.HasSynced] or ctx is done, and names
// what did not sync. The factory must have been started.
func (i *Informer[T]) WaitForSync(ctx context.Context) error {
	i.f.mu.Lock()
	fctx := i.f.ctx
	i.f.mu.Unlock()
	if fctx == nil {
		return ErrNotStarted
	}
	return waitSynced(ctx, fctx, i.e)
}

// AddIndex adds index functions to the informer's caches (every namespace).
// Indexes may be added before or after Start; an index name that already
// exists, or that appears twice in one call, is an error and adds nothing.
func (i *Informer[T]) AddIndex(indexes ...Index) error {
	if len(indexes) == 0 {
		return fmt.Errorf("informer: AddIndex on %s: no index given; pass one, e.g. informer.ByLabel(\"app\")", i.e.gvr.GroupResource())
	}
	idx := cache.Indexers{}
	for _, x := range indexes {
		if x.Name == "" || x.Func == nil {
			return fmt.Errorf("informer: AddIndex on %s: index needs a Name and a Func", i.e.gvr.GroupResource())
		}
		if _, dup := idx[x.Name]; dup {
			return fmt.Errorf("informer: AddIndex on %s: index %q given twice in one call; give each index once", i.e.gvr.GroupResource(), x.Name)
		}
		idx[x.Name] = x.Func
	}
	existing := i.e.informers[i.e.namespaces[0]].GetIndexer().GetIndexers()
	for name := range idx {
		if _, ok := existing[name]; ok {
			return fmt.Errorf("informer: AddIndex on %s: index %q exists already", i.e.gvr.GroupResource(), name)
		}
	}
	for _, ns := range i.e.namespaces {
		if err := i.e.informers[ns].AddIndexers(idx); err != nil {
			return fmt.Errorf("informer: AddIndex on %s: %w", i.e.gvr.GroupResource(), err)
		}
	}
	return nil
}

func mapsKeys(m cache.Indexers) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Handler receives typed events. Any field may be nil. For one object,
// calls come in the order the informer saw the changes; calls for objects in
// different namespaces (with WithNamespaces) may interleave. A handler
// must not block for long: each registration has its own goroutine and
// an unbounded buffer, so a slow handler delays only itself but grows memory.
type Handler[T Object] struct {
	// OnAdd is called for each object found by the initial list
	// (isInInitialList true) and for each object created later.
	OnAdd func(obj T, isInInitialList bool)
	// OnUpdate is called when an object changes, and on every resync with
	// oldObj and newObj holding the same object.
	OnUpdate func(oldObj, newObj T)
	// OnDelete is called with the last known state of a deleted object. When
	// the watch missed the deletion, client-go passes a
	// cache.DeletedFinalStateUnknown tombstone; it is unwrapped here, so obj
	// may be slightly stale but is never a tombstone.
	OnDelete func(obj T)
}

// Registration is a handler added with [Informer.AddHandler].
type Registration struct {
	regs map[cache.SharedIndexInformer]cache.ResourceEventHandlerRegistration
}

// HasSynced reports whether the handler has been given every object of the
// initial list (of every namespace).
func (r *Registration) HasSynced() bool {
	for _, reg := range r.regs {
		if !reg.HasSynced() {
			return false
		}
	}
	return true
}

// Remove unregisters the handler from every namespace's informer. A call
// already running may still finish; no new calls start. Remove is
// idempotent.
func (r *Registration) Remove() error {
	var errs []error
	for inf, reg := range r.regs {
		if err := inf.RemoveEventHandler(reg); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("informer: remove handler: %w", errors.Join(errs...))
	}
	return nil
}

// AddHandler registers h on the informer (on every namespace's informer).
// Added after the cache synced, h first gets OnAdd for every cached object
// with isInInitialList true. Events whose objects are not of type T (which
// only a WithTransform changing types can cause) are dropped and logged.
func (i *Informer[T]) AddHandler(h Handler[T]) (*Registration, error) {
	adapter := i.adapter(h)
	r := &Registration{regs: map[cache.SharedIndexInformer]cache.ResourceEventHandlerRegistration{}}
	for _, ns := range i.e.namespaces {
		inf := i.e.informers[ns]
		reg, err := inf.AddEventHandler(adapter)
		if err != nil {
			_ = r.Remove()
			return nil, fmt.Errorf("informer: add handler to %s: %w", describe(i.e.gvr, ns, i.e.namespaced), err)
		}
		r.regs[inf] = reg
	}
	return r, nil
}

// adapter turns a typed Handler into a client-go handler: it type-asserts
// every object and unwraps delete tombstones.
func (i *Informer[T]) adapter(h Handler[T]) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if h.OnAdd == nil {
				return
			}
			if o, ok := i.cast(obj, "add"); ok {
				h.OnAdd(o, initial)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			if h.OnUpdate == nil {
				return
			}
			o, ok1 := i.cast(oldObj, "update")
			n, ok2 := i.cast(newObj, "update")
			if ok1 && ok2 {
				h.OnUpdate(o, n)
			}
		},
		DeleteFunc: func(obj any) {
			if h.OnDelete == nil {
				return
			}
			if o, ok := i.cast(Unwrap(obj), "delete"); ok {
				h.OnDelete(o)
			}
		},
	}
}

// Unwrap returns the object inside a cache.DeletedFinalStateUnknown
// tombstone, or obj itself.
func Unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	if t, ok := obj.(*cache.DeletedFinalStateUnknown); ok && t != nil {
		return t.Obj
	}
	return obj
}

func (i *Informer[T]) cast(obj any, event string) (T, bool) {
	o, ok := obj.(T)
	if !ok {
		i.f.log.Error(nil, "dropping event with unexpected object type", "resource", i.e.gvr.String(), "event", event, "type", fmt.Sprintf("%T", obj), "want", reflect.TypeFor[T]().String())
	}
	return o, ok
}

// Lister reads an informer's cache. Its results are shared with the cache
// and with other users: treat them as read-only (DeepCopy before changing).
type Lister[T Object] struct {
	e           *entry
	gr          schema.GroupResource
	all         cache.Indexer            // the one indexer when all namespaces are watched, else nil
	byNamespace map[string]cache.Indexer // per watched namespace
}

// Get returns the object namespace/name (namespace "" for cluster-scoped
// resources). An object not in the cache gives an apierrors NotFound error
// (apierrors.IsNotFound) naming the resource; a namespace the factory does
// not watch gives an error wrapping ErrNotWatched.
func (l *Lister[T]) Get(namespace, name string) (T, error) {
	var zero T
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	idx := l.all
	if idx == nil {
		if idx = l.byNamespace[namespace]; idx == nil {
			return zero, fmt.Errorf("informer: get %s %s: %w: %q (watched: %v)", l.gr, key, ErrNotWatched, namespace, l.e.namespaces)
		}
	}
	obj, exists, err := idx.GetByKey(key)
	if err != nil {
		return zero, fmt.Errorf("informer: get %s %s: %w", l.gr, key, err)
	}
	if !exists {
		return zero, apierrors.NewNotFound(l.gr, name)
	}
	o, ok := obj.(T)
	if !ok {
		return zero, fmt.Errorf("informer: get %s %s: cached object is %T, not %v", l.gr, key, obj, reflect.TypeFor[T]())
	}
	return o, nil
}

func (l *Lister[T]) informerFor(namespace string) (cache.Indexer, error) {
	if l.all != nil {
		return l.all, nil
	}
	if idx, ok := l.byNamespace[namespace]; ok {
		return idx, nil
	}
	return nil, fmt.Errorf("%w: %q (watched: %v)", ErrNotWatched, namespace, l.e.namespaces)
}

// List returns the cached objects matching selector, from every watched
// namespace; a nil selector matches everything. The order is unspecified.
func (l *Lister[T]) List(selector labels.Selector) ([]T, error) {
	var out []T
	for _, ns := range l.e.namespaces {
		var err error
		if out, err = appendMatching(out, l.e.informers[ns].GetIndexer().List(), selector); err != nil {
			return nil, fmt.Errorf("informer: list %s: %w", l.e.gvr.GroupResource(), err)
		}
	}
	return out, nil
}

// ListInNamespace returns the cached objects in namespace matching selector
// (nil matches everything), using the namespace index.
func (l *Lister[T]) ListInNamespace(namespace string, selector labels.Selector) ([]T, error) {
	idx, err := l.informerFor(namespace)
	if err != nil {
		return nil, fmt.Errorf("informer: list %s in %q: %w", l.e.gvr.GroupResource(), namespace, err)
	}
	objs, err := idx.ByIndex(IndexNamespace, namespace)
	if err != nil {
		return nil, fmt.Errorf("informer: list %s in %q: %w", l.e.gvr.GroupResource(), namespace, err)
	}
	out, err := appendMatching[T](nil, objs, selector)
	if err != nil {
		return nil, fmt.Errorf("informer: list %s in %q: %w", l.e.gvr.GroupResource(), namespace, err)
	}
	return out, nil
}

// ByIndex returns the cached objects whose index function gave value, from
// every watched namespace. An index that was never added (see
// [Informer.AddIndex]) gives an error wrapping ErrUnknownIndex that lists the
// existing ones.
func (l *Lister[T]) ByIndex(index, value string) ([]T, error) {
	var out []T
	for _, ns := range l.e.namespaces {
		idx := l.e.informers[ns].GetIndexer()
		if _, ok := idx.GetIndexers()[index]; !ok {
			return nil, fmt.Errorf("informer: %s: %w %q (existing: %v; add it with AddIndex)", l.e.gvr.GroupResource(), ErrUnknownIndex, index, slices.Sorted(mapsKeys(idx.GetIndexers())))
		}
		objs, err := idx.ByIndex(index, value)
		if err != nil {
			return nil, fmt.Errorf("informer: %s: index %q: %w", l.e.gvr.GroupResource(), index, err)
		}
		if out, err = appendMatching(out, objs, nil); err != nil {
			return nil, fmt.Errorf("informer: %s: index %q: %w", l.e.gvr.GroupResource(), index, err)
		}
	}
	return out, nil
}

// Keys returns the cache keys ("namespace/name", or "name") of every cached
// object, from every watched namespace, sorted.
func (l *Lister[T]) Keys() []string {
	var keys []string
	for _, inf := range l.e.informers {
		keys = append(keys, inf.GetIndexer().ListKeys()...)
	}
	slices.Sort(keys)
	return keys
}

func appendMatching[T Object](out []T, objs []any, selector labels.Selector) ([]T, error) {
	if out == nil {
		out = make([]T, 0, len(objs))
	}
	for _, obj := range objs {
		o, ok := obj.(T)
		if !ok {
			return nil, fmt.Errorf("cached object is %T, not %v", obj, reflect.TypeFor[T]())
		}
		if selector != nil && !selector.Empty() {
			l, ok := obj.(interface{ GetLabels() map[string]string })
			if !ok || !selector.Matches(labels.Set(l.GetLabels())) {
				continue
			}
		}
		out = append(out, o)
	}
	return out, nil
}
