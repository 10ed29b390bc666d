package watch

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	apiwatch "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/kubekit/kubekit/client"
)

// Object is what a Watcher delivers: an API object with metadata, such as
// *corev1.Pod or *unstructured.Unstructured.
type Object interface {
	runtime.Object
	metav1.Object
}

// EventType is the kind of change an [Event] reports.
type EventType string

// The event types a handler sees. Bookmarks and errors are handled inside
// the Watcher and never reach the handler.
const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
)

// Event is one change of one object.
type Event[T Object] struct {
	Type EventType
	// Object is the object after the change; for Deleted, its last state.
	Object T
	// Initial is set on the ADDED events of the initial list (no checkpoint).
	Initial bool
	// Synthetic is set on events made up by gap recovery after a 410 Gone:
	// the Watcher re-listed and compared with the objects it knew. A
	// synthetic Deleted carries a metadata-only tombstone (namespace, name,
	// UID and the last resourceVersion seen).
	Synthetic bool
}

// Handler handles one event. Returning an error retries the same event with
// backoff (see [WithHandlerRetries]); the checkpoint never moves past it.
type Handler[T Object] func(ctx context.Context, e Event[T]) error

// ErrExpired is matched by the error Run returns on 410 Gone when gap
// recovery is off ([WithGapRecovery](false)). The error also satisfies
// apierrors.IsResourceExpired or apierrors.IsGone.
var ErrExpired = errors.New("watch: resume point expired (410 Gone)")

// HandlerError is returned by Run when the handler kept failing on one
// event. The checkpoint holds the position before that event.
type HandlerError struct {
	Type     EventType
	Key      string // namespace/name, or name for cluster-scoped objects
	Attempts int
	Err      error
}

func (e *HandlerError) Error() string {
	return fmt.Sprintf("watch: handler failed %d times on %s %s: %v", e.Attempts, e.Type, e.Key, e.Err)
}

func (e *HandlerError) Unwrap() error { return e.Err }

// Watcher watches one resource, resumably. Create it with [New] or
// [NewForResource] and call [Watcher.Run].
type Watcher[T Object] struct {
	o         options
	log       logr.Logger
	gvr       schema.GroupVersionResource
	gvk       schema.GroupVersionKind
	identity  string
	list      func(context.Context, metav1.ListOptions) (runtime.Object, error)
	watch     func(context.Context, metav1.ListOptions) (apiwatch.Interface, error)
	tombstone func() T
	running   atomic.Bool
}

// New returns a Watcher for the built-in type T, a pointer to a type of
// client-go's scheme such as *corev1.ConfigMap. For custom resources or
// unstructured objects use [NewForResource].
//
// The Watcher uses c's configuration and connection pool but not its
// whole-request timeout (client.WithTimeout), which would cut every watch
// stream after that long.
func New[T Object](c *client.Client, opts ...Option) (*Watcher[T], error) {
	if c == nil {
		return nil, errors.New("watch: New(nil): pass a client from client.New")
	}
	t := reflect.TypeFor[T]()
	if t == reflect.TypeFor[*unstructured.Unstructured]() {
		return nil, errors.New("watch: New[*unstructured.Unstructured]: use NewForResource(c, gvr) to watch unstructured objects")
	}
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("watch: New[%v]: the type must be a pointer to an API struct, e.g. New[*corev1.Pod]", t)
	}
	newT := func() T { return reflect.New(t.Elem()).Interface().(T) }
	gvks, _, err := scheme.Scheme.ObjectKinds(newT())
	if err != nil || len(gvks) == 0 {
		return nil, fmt.Errorf("watch: New[%v]: type not registered in client-go's scheme; for custom resources use NewForResource: %w", t, err)
	}
	gvk := gvks[0]
	m, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("watch: New[%v]: kind %s is not served by the API server: %w", t, gvk, err)
	}
	w, err := newWatcher[T](c, m, opts)
	if err != nil {
		return nil, err
	}
	listGVK := gvk.GroupVersion().WithKind(gvk.Kind + "List")
	if _, err := scheme.Scheme.New(listGVK); err != nil {
		return nil, fmt.Errorf("watch: New[%v]: no list type %s: %w", t, listGVK, err)
	}
	cfg, hc := c.StreamingConfig()
	cfg.GroupVersion = &schema.GroupVersion{Group: gvk.Group, Version: gvk.Version}
	cfg.APIPath = "/apis"
	if gvk.Group == "" {
		cfg.APIPath = "/api"
	}
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rc, err := rest.RESTClientForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("watch: New[%v]: %w", t, err)
	}
	namespaced := m.Scope.Name() == meta.RESTScopeNameNamespace
	req := func(lo metav1.ListOptions) *rest.Request {
		// Built-in types speak protobuf, like client-go's clientsets: about 3x
		// faster to decode than JSON.
		return rc.Get().UseProtobufAsDefault().NamespaceIfScoped(w.o.namespace, namespaced).Resource(m.Resource.Resource).
			VersionedParams(&lo, scheme.ParameterCodec)
	}
	w.list = func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) {
		l, _ := scheme.Scheme.New(listGVK)
		return l, req(lo).Do(ctx).Into(l)
	}
	w.watch = func(ctx context.Context, lo metav1.ListOptions) (apiwatch.Interface, error) {
		lo.Watch = true
		return req(lo).Watch(ctx)
	}
	w.tombstone = newT
	return w, nil
}

// NewForResource returns a Watcher of unstructured objects for any
// resource, custom resources included. gvr.Version may be empty for the
// server's preferred version, e.g. {Group: "apps", Resource: "deployments"}.
func NewForResource(c *client.Client, gvr schema.GroupVersionResource, opts ...Option) (*Watcher[*unstructured.Unstructured], error) {
	if c == nil {
		return nil, errors.New("watch: NewForResource(nil, ...): pass a client from client.New")
	}
	if gvr.Resource == "" {
		return nil, fmt.Errorf("watch: NewForResource(%v): empty resource name, e.g. {Group: \"apps\", Resource: \"deployments\"}", gvr)
	}
	mapper := c.RESTMapper()
	full, err := mapper.ResourceFor(gvr)
	if err != nil {
		return nil, fmt.Errorf("watch: NewForResource(%s): resource not served by the API server (check it is the plural, lower-case name and that the CRD is installed): %w", gvrString(gvr), err)
	}
	gvk, err := mapper.KindFor(full)
	if err != nil {
		return nil, fmt.Errorf("watch: NewForResource(%s): %w", gvrString(gvr), err)
	}
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("watch: NewForResource(%s): %w", gvrString(gvr), err)
	}
	w, err := newWatcher[*unstructured.Unstructured](c, m, opts)
	if err != nil {
		return nil, err
	}
	cfg, hc := c.StreamingConfig()
	dyn, err := dynamic.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("watch: NewForResource(%s): %w", gvrString(gvr), err)
	}
	ri := dyn.Resource(m.Resource).Namespace(w.o.namespace)
	w.list = func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) { return ri.List(ctx, lo) }
	w.watch = ri.Watch
	w.tombstone = func() *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		return u
	}
	return w, nil
}

func newWatcher[T Object](c *client.Client, m *meta.RESTMapping, opts []Option) (*Watcher[T], error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.namespace != "" && m.Scope.Name() != meta.RESTScopeNameNamespace {
		return nil, fmt.Errorf("watch: WithNamespace(%q): %s is cluster-scoped; leave the namespace out", o.namespace, gvrString(m.Resource))
	}
	log := c.Logger()
	if o.logger != nil {
		log = *o.logger
	}
	gr := m.Resource.GroupResource()
	return &Watcher[T]{
		o:        o,
		log:      log.WithName("watch").WithValues("resource", gr.String()),
		gvr:      m.Resource,
		gvk:      m.GroupVersionKind,
		identity: fmt.Sprintf("%s namespace=%q labelSelector=%q fieldSelector=%q", gr.String(), o.namespace, o.labelSelector, o.fieldSelector),
	}, nil
}

// Resource returns the watched resource.
func (w *Watcher[T]) Resource() schema.GroupVersionResource { return w.gvr }

// Identity returns the string that identifies this watch in its checkpoint:
// resource, namespace and selectors.
func (w *Watcher[T]) Identity() string { return w.identity }

func gvrString(gvr schema.GroupVersionResource) string {
	s := gvr.Resource
	if gvr.Group != "" {
		s += "." + gvr.Group
	}
	if gvr.Version != "" {
		s += "/" + gvr.Version
	}
	return s
}

// Run watches until ctx is cancelled (then it saves the checkpoint and
// returns nil) or a fatal error: 401/403 and other errors retrying cannot
// fix, a handler that keeps failing ([*HandlerError]), a bad checkpoint
// ([ErrBadCheckpoint], [ErrCheckpointMismatch]) or, with gap recovery off,
// 410 Gone ([ErrExpired]). Stream ends and network errors are retried.
//
// Events are delivered one at a time, in resourceVersion order per object,
// at least once: the checkpoint only moves past an event once h returned
// nil for it. Only one Run per Watcher may be active at a time. If ctx is
// already done when Run is called, Run returns ctx's error at once.
func (w *Watcher[T]) Run(ctx context.Context, h Handler[T]) error {
	if h == nil {
		return errors.New("watch: Run(ctx, nil): pass a handler")
	}
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("watch: Run: this Watcher is already running; create another Watcher for a second watch")
	}
	defer w.running.Store(false)
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &runner[T]{w: w, h: h, known: map[objKey]ref{}, needFull: true}
	r.delta, _ = w.o.checkpoint.(DeltaCheckpoint)
	return r.run(ctx)
}

type ref struct {
	uid types.UID
	rv  string
}

type runner[T Object] struct {
	w  *Watcher[T]
	h  Handler[T]
	rv string
	// known is the set of objects (key, UID, resourceVersion) that gap
	// recovery compares a re-list with and the checkpoint holds. Delivery
	// does not touch it: each handled change goes to pending, and the save
	// that takes pending folds it into known first, in the background saver.
	// So known belongs to the saver while a save runs (busy) and to Run's
	// goroutine otherwise; see sync.
	known    map[objKey]ref
	pending  []change
	unsaved  int // handled events (and bookmarks) not saved yet
	jobs     chan saveJob
	results  chan saveResult
	busy     bool      // a background save is running
	firstNew time.Time // when the first unsaved event was handled
	delta    DeltaCheckpoint
	needFull bool     // the first save, and the one after a failure or a compaction request
	spareBuf []change // a saved batch whose memory pending reuses
	// Used only by write, one save at a time.
	spare *State          // a saved State whose memory the next snapshot reuses
	last  map[objKey]bool // changes: the keys already written
}

// change is one handled event's effect on the known set.
type change struct {
	k   objKey
	ref ref
	del bool
}

// maxPending bounds the changes that wait while a save runs: past it,
// delivery waits for the save (a checkpoint far slower than the stream).
const maxPending = 1 << 16

// keepBuf is the largest batch whose memory is kept for the next one.
const keepBuf = 1 << 14

// saveJob is one save: the changes handled since the last one, to fold into
// the known set, and the position they reach. With a DeltaCheckpoint and
// full unset, only the changed objects are written.
type saveJob struct {
	batch []change
	rv    string
	full  bool
}

// saveResult is a save's outcome.
type saveResult struct {
	batch   []change // for reuse
	compact bool
	err     error
}

// objKey identifies an object; a struct, not "ns/name", so the per-event
// bookkeeping does not allocate.
type objKey struct{ ns, name string }

func key(ns, name string) objKey { return objKey{ns, name} }

func (k objKey) String() string {
	if k.ns == "" {
		return k.name
	}
	return k.ns + "/" + k.name
}

func compareKeys(a, b objKey) int {
	if c := strings.Compare(a.ns, b.ns); c != 0 {
		return c
	}
	return strings.Compare(a.name, b.name)
}

func (r *runner[T]) run(ctx context.Context) (err error) {
	w := r.w
	relist, synthetic := true, false
	st, lerr := w.o.checkpoint.Load(ctx)
	switch {
	case lerr != nil && ctx.Err() != nil:
		return nil
	case lerr != nil && w.o.resetBadCheckpoint:
		w.log.Error(lerr, "ignoring the bad checkpoint (WithResetBadCheckpoint): listing afresh")
		synthetic = true
	case lerr != nil:
		return fmt.Errorf("watch %s: load checkpoint: %w", w.identity, lerr)
	case st != nil && st.Resource != w.identity:
		return fmt.Errorf("%w: it is for %s, this watch is %s; use another checkpoint", ErrCheckpointMismatch, st.Resource, w.identity)
	case st != nil:
		r.rv = st.ResourceVersion
		r.known = make(map[objKey]ref, len(st.Objects))
		for _, o := range st.Objects {
			r.known[key(o.Namespace, o.Name)] = ref{uid: o.UID, rv: o.ResourceVersion}
		}
		relist = false
	}
	// Batched saves run in the background, so a slow Save (an fsync, an
	// API call) does not hold up delivery; one at a time, newest state last.
	r.jobs, r.results = make(chan saveJob), make(chan saveResult, 1)
	saverDone := make(chan struct{})
	go func() {
		defer close(saverDone)
		for job := range r.jobs {
			res := r.write(ctx, job)
			if res.err != nil && ctx.Err() != nil {
				res.err = errSaveInterrupted // the final save on the way out takes over
			}
			r.results <- res
		}
	}()
	defer func() {
		// A clean stop and a fatal error both save: the state only holds
		// handled events. A bounded, uncancelled context lets it finish.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		r.drain()
		close(r.jobs)
		<-saverDone
		if serr := r.save(sctx); serr != nil && err == nil {
			err = serr
		}
	}()

	bo := w.o.backoff
	for {
		if relist {
			if lerr := r.relist(ctx, synthetic); lerr != nil {
				if ctx.Err() != nil {
					return nil
				}
				if fatal(lerr) {
					return lerr
				}
				w.log.Info("list failed; retrying", "error", lerr.Error())
				if !sleep(ctx, bo.Step()) {
					return nil
				}
				continue
			}
			relist = false
		}
		started := time.Now()
		werr := r.stream(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if apierrors.IsResourceExpired(werr) || apierrors.IsGone(werr) {
			if !w.o.gapRecovery {
				return fmt.Errorf("%w: watch %s from resourceVersion %s (gap recovery is off, see WithGapRecovery): %w", ErrExpired, w.identity, r.rv, werr)
			}
			w.log.Info("resume point expired; re-listing to recover the gap", "resourceVersion", r.rv)
			relist, synthetic = true, true
			continue
		}
		if fatal(werr) {
			return werr
		}
		if time.Since(started) >= w.o.healthy {
			bo = w.o.backoff
		}
		d := bo.Step()
		if werr != nil {
			w.log.Info("watch failed; reconnecting", "error", werr.Error(), "after", d)
		} else {
			w.log.V(1).Info("watch stream ended; reconnecting", "after", d)
		}
		if !sleep(ctx, d) {
			return nil
		}
	}
}

// fatal says whether retrying cannot fix err.
func fatal(err error) bool {
	if err == nil {
		return false
	}
	var he *HandlerError
	if errors.As(err, &he) || errors.Is(err, errUnexpected) {
		return true
	}
	return apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) || apierrors.IsNotFound(err) ||
		apierrors.IsBadRequest(err) || apierrors.IsInvalid(err) || apierrors.IsMethodNotSupported(err) ||
		apierrors.IsNotAcceptable(err) || apierrors.IsUnsupportedMediaType(err)
}

var errUnexpected = errors.New("unexpected object")

// errSaveInterrupted reports a background save cut short because Run is
// stopping; the final save writes the state instead, so it is not logged.
var errSaveInterrupted = errors.New("checkpoint save interrupted by the stop")

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (r *runner[T]) apiErr(verb string, err error) error {
	hint := ""
	if apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
		hint = fmt.Sprintf("; the identity needs list and watch permission on %s", r.w.gvr.GroupResource())
	}
	return fmt.Errorf("watch %s: %s: %w%s", r.w.identity, verb, err, hint)
}

// relist lists everything (paginated) and delivers what differs from the
// known set: as initial ADDED events on a first start, as synthetic events
// after a gap.
func (r *runner[T]) relist(ctx context.Context, synthetic bool) error {
	w := r.w
	var items []T
	var listRV string
	for attempt := 0; ; attempt++ {
		items, listRV = items[:0], ""
		lo := metav1.ListOptions{LabelSelector: w.o.labelSelector, FieldSelector: w.o.fieldSelector, Limit: w.o.pageSize}
		var err error
		for {
			var l runtime.Object
			l, err = w.list(ctx, lo)
			if err != nil {
				break
			}
			lm, aerr := meta.ListAccessor(l)
			if aerr != nil {
				return fmt.Errorf("watch %s: list: %w: %w", w.identity, errUnexpected, aerr)
			}
			if listRV == "" {
				listRV = lm.GetResourceVersion()
			}
			err = meta.EachListItem(l, func(o runtime.Object) error {
				t, ok := o.(T)
				if !ok {
					return fmt.Errorf("%w: list item is %T", errUnexpected, o)
				}
				items = append(items, t)
				return nil
			})
			if err != nil || lm.GetContinue() == "" {
				break
			}
			lo.Continue = lm.GetContinue()
		}
		if err == nil {
			break
		}
		if (apierrors.IsResourceExpired(err) || apierrors.IsGone(err)) && attempt < 3 {
			continue // the continue token expired: list again from the start
		}
		return r.apiErr("list", err)
	}

	deliver := w.o.initialEvents || synthetic
	seen := make(map[objKey]struct{}, len(items))
	r.sync()
	if len(r.known) == 0 { // a first list: size the known set once
		r.known = make(map[objKey]ref, len(items))
	}
	for _, o := range items {
		k := key(o.GetNamespace(), o.GetName())
		seen[k] = struct{}{}
		old, known := r.known[k]
		switch {
		case known && old.uid == o.GetUID() && old.rv == o.GetResourceVersion():
			continue
		case known && old.uid == o.GetUID():
			if err := r.deliver(ctx, Event[T]{Type: Modified, Object: o, Synthetic: synthetic}); err != nil {
				return err
			}
			continue
		case known: // deleted and re-created during the gap
			if err := r.deliver(ctx, Event[T]{Type: Deleted, Object: r.tomb(k, old), Synthetic: true}); err != nil {
				return err
			}
		}
		if deliver {
			if err := r.deliver(ctx, Event[T]{Type: Added, Object: o, Synthetic: synthetic, Initial: !synthetic}); err != nil {
				return err
			}
		} else {
			r.record(change{k: k, ref: ref{uid: o.GetUID(), rv: o.GetResourceVersion()}})
		}
	}
	var gone []objKey
	for k := range r.known {
		if _, ok := seen[k]; !ok {
			gone = append(gone, k)
		}
	}
	slices.SortFunc(gone, compareKeys)
	for _, k := range gone {
		if err := r.deliver(ctx, Event[T]{Type: Deleted, Object: r.tomb(k, r.known[k]), Synthetic: true}); err != nil {
			return err
		}
	}
	r.rv = listRV
	r.unsaved++
	return r.save(ctx)
}

func (r *runner[T]) tomb(k objKey, old ref) T {
	t := r.w.tombstone()
	t.SetNamespace(k.ns)
	t.SetName(k.name)
	t.SetUID(old.uid)
	t.SetResourceVersion(old.rv)
	return t
}

// stream runs one watch from r.rv until it ends (nil), fails, or ctx is done.
func (r *runner[T]) stream(ctx context.Context) error {
	w := r.w
	wi, err := w.watch(ctx, metav1.ListOptions{
		LabelSelector:       w.o.labelSelector,
		FieldSelector:       w.o.fieldSelector,
		ResourceVersion:     r.rv,
		AllowWatchBookmarks: true,
	})
	if err != nil {
		return r.apiErr("watch", err)
	}
	defer wi.Stop()
	tick := time.NewTicker(w.o.checkpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if r.unsaved > 0 && time.Since(r.firstNew) >= w.o.checkpointInterval {
				r.saveAsync(ctx)
			}
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return nil
			}
			switch ev.Type {
			case apiwatch.Error:
				return r.apiErr("watch stream", apierrors.FromObject(ev.Object))
			case apiwatch.Bookmark:
				m, err := meta.Accessor(ev.Object)
				if err != nil {
					return fmt.Errorf("watch %s: bookmark: %w: %w", w.identity, errUnexpected, err)
				}
				if rv := m.GetResourceVersion(); rv != "" && rv != r.rv {
					r.rv = rv
					r.unsaved++
					r.saveAsync(ctx) // bookmarks are rare: keep a quiet watch ahead of compaction
				}
			case apiwatch.Added, apiwatch.Modified, apiwatch.Deleted:
				t, ok := ev.Object.(T)
				if !ok {
					return fmt.Errorf("watch %s: %w: %s event carries %T", w.identity, errUnexpected, ev.Type, ev.Object)
				}
				if err := r.deliver(ctx, Event[T]{Type: EventType(ev.Type), Object: t}); err != nil {
					return err
				}
				r.rv = t.GetResourceVersion()
				if r.unsaved >= w.o.checkpointEvents || len(r.pending) >= w.o.maxPending {
					r.saveAsync(ctx)
				}
			default:
				w.log.Info("ignoring an unknown watch event type", "type", ev.Type)
			}
		}
	}
}

// deliver calls the handler until it succeeds, then records the event for
// the known set and the next save. It returns ctx's error or a *HandlerError.
func (r *runner[T]) deliver(ctx context.Context, e Event[T]) error {
	bo := r.w.o.handlerBackoff
	k := key(e.Object.GetNamespace(), e.Object.GetName())
	for attempt := 1; ; attempt++ {
		err := r.h(ctx, e)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if n := r.w.o.handlerRetries; n >= 0 && attempt > n {
			return &HandlerError{Type: e.Type, Key: k.String(), Attempts: attempt, Err: err}
		}
		d := bo.Step()
		r.w.log.Info("handler failed; retrying", "event", e.Type, "object", k.String(), "attempt", attempt, "after", d, "error", err.Error())
		if !sleep(ctx, d) {
			return ctx.Err()
		}
	}
	r.record(change{k: k, ref: ref{uid: e.Object.GetUID(), rv: e.Object.GetResourceVersion()}, del: e.Type == Deleted})
	return nil
}

// record notes a handled change for the next save.
func (r *runner[T]) record(c change) {
	r.pending = append(r.pending, c)
	if r.unsaved == 0 {
		r.firstNew = time.Now()
	}
	r.unsaved++
}

// sync brings the known set up to date for Run's goroutine: it waits for
// the running save and folds in the pending changes. They stay pending, so
// the next save still writes them (folding again changes nothing).
func (r *runner[T]) sync() {
	r.drain()
	r.fold(r.pending)
}

// fold applies changes to the known set, in order.
func (r *runner[T]) fold(batch []change) {
	for _, c := range batch {
		if c.del {
			delete(r.known, c.k)
		} else {
			r.known[c.k] = c.ref
		}
	}
}

// job takes the pending changes for the next save: only those changes when
// the checkpoint takes them and the last save succeeded, else the full state.
func (r *runner[T]) job() saveJob {
	j := saveJob{batch: r.pending, rv: r.rv, full: r.delta == nil || r.needFull}
	r.pending, r.spareBuf, r.needFull = r.spareBuf[:0], nil, false
	if r.pending == nil { // the last batch is still being saved
		r.pending = make([]change, 0, min(r.w.o.checkpointEvents, keepBuf))
	}
	return j
}

// write performs a save: it folds the batch into the known set and writes
// the full state or the batch's changes. It runs in the saver, or in Run's
// goroutine when no save is running.
func (r *runner[T]) write(ctx context.Context, j saveJob) saveResult {
	r.fold(j.batch)
	res := saveResult{batch: j.batch}
	if j.full || len(j.batch) > 2*len(r.known)+1024 { // a full save is smaller
		s := r.snapshot(j.rv)
		res.err = r.w.o.checkpoint.Save(ctx, s)
		r.spare = s // Save does not keep s
		return res
	}
	res.compact, res.err = r.delta.SaveChanges(ctx, r.changes(j))
	return res
}

// changes lists the objects the batch changed, once each, as they are now.
func (r *runner[T]) changes(j saveJob) *Changes {
	c := &Changes{Resource: r.w.identity, ResourceVersion: j.rv, Upserted: make([]ObjectRef, 0, len(j.batch))}
	last := r.last // reused for batches of the usual size
	switch {
	case len(j.batch) > keepBuf:
		last = make(map[objKey]bool, len(j.batch))
	case last == nil:
		last = make(map[objKey]bool, len(j.batch))
		r.last = last
	default:
		clear(last)
	}
	for i := len(j.batch) - 1; i >= 0; i-- { // newest first: the state now
		ch := j.batch[i]
		if last[ch.k] {
			continue
		}
		last[ch.k] = true
		if ch.del {
			c.Deleted = append(c.Deleted, ObjectRef{Namespace: ch.k.ns, Name: ch.k.name})
		} else {
			c.Upserted = append(c.Upserted, ObjectRef{Namespace: ch.k.ns, Name: ch.k.name, UID: ch.ref.uid, ResourceVersion: ch.ref.rv})
		}
	}
	return c
}

// snapshot is the state to save: the position and the known objects. It
// reuses the last saved State's memory (Save does not keep it), so a watch
// of many objects does not allocate a new copy of them for every batch.
func (r *runner[T]) snapshot(rv string) *State {
	s := r.spare
	r.spare = nil
	if s == nil {
		s = &State{Objects: make([]ObjectRef, 0, len(r.known))}
	}
	s.Resource, s.ResourceVersion, s.Objects = r.w.identity, rv, s.Objects[:0]
	for k, v := range r.known {
		s.Objects = append(s.Objects, ObjectRef{Namespace: k.ns, Name: k.name, UID: v.uid, ResourceVersion: v.rv})
	}
	return s
}

// saveAsync hands the pending changes to the background saver, unless a
// save is still running (then the next event or tick tries again; past
// maxPending changes it waits for it) or ctx is done (then the final save
// on the way out writes them, once).
func (r *runner[T]) saveAsync(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if r.busy && len(r.pending) < r.w.o.maxPending {
		select {
		case res := <-r.results:
			r.saved(res)
		default:
			return
		}
	} else if r.busy {
		select {
		case res := <-r.results:
			r.saved(res)
		case <-ctx.Done():
			return
		}
	}
	if r.unsaved == 0 || r.rv == "" {
		return
	}
	r.jobs <- r.job()
	r.busy, r.unsaved = true, 0
}

// drain waits for the running background save, if any.
func (r *runner[T]) drain() {
	if r.busy {
		r.saved(<-r.results)
	}
}

func (r *runner[T]) saved(res saveResult) {
	r.busy = false
	r.done(res)
	if errors.Is(res.err, errSaveInterrupted) {
		return
	}
	if res.err != nil {
		r.w.log.Error(res.err, "saving the checkpoint failed; will retry")
	}
}

// done records a save's outcome: a failed save is retried, in full.
func (r *runner[T]) done(res saveResult) {
	if cap(res.batch) <= keepBuf { // not the memory of a large re-list
		r.spareBuf = res.batch[:0]
	}
	if res.err != nil {
		r.unsaved++ // save again later
		r.needFull = true
	} else if res.compact {
		r.needFull = true
	}
}

// save waits for a background save and writes the checkpoint now if
// anything changed since the last save.
func (r *runner[T]) save(ctx context.Context) error {
	r.drain()
	if r.unsaved == 0 || r.rv == "" {
		return nil
	}
	res := r.write(ctx, r.job())
	r.unsaved = 0
	r.done(res)
	if res.err != nil {
		r.w.log.Error(res.err, "saving the checkpoint failed; will retry", "resourceVersion", r.rv)
		return fmt.Errorf("watch %s: save checkpoint: %w", r.w.identity, res.err)
	}
	return nil
}
