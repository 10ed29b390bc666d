package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// DefaultPageSize is the page size of List, like kubectl's --chunk-size.
const DefaultPageSize = 500

// ListFunc is the List method of any typed or dynamic client, e.g.
// clientset.CoreV1().Pods(ns).List or dynamicClient.Resource(gvr).List.
type ListFunc[L metav1.ListInterface] func(context.Context, metav1.ListOptions) (L, error)

// ExpiredStrategy says what List does when the API server no longer has the
// snapshot a continue token refers to (410 Gone in the middle of a list,
// typically after etcd compaction, about 5 minutes after the first page).
type ExpiredStrategy int

const (
	// ExpiredFail ends the list with an [*ExpiredError] (the default): the
	// caller gets everything or a clear error, never a silent partial result.
	ExpiredFail ExpiredStrategy = iota
	// ExpiredContinueInconsistent goes on with the fresh continue token the
	// server offers. Every item is seen once, but later pages come from a
	// newer snapshot, so the result is not a consistent point-in-time view:
	// [ListInfo.Inconsistent] reports it; do not start a watch from such a list.
	ExpiredContinueInconsistent
	// ExpiredRestart lists again from the first page, up to
	// [MaxListRestarts] times. Items already yielded are yielded again
	// ([ListInfo.Restarts] counts the restarts); Collect and Count discard the
	// partial result instead, so they stay exact and duplicate-free.
	ExpiredRestart
)

// MaxListRestarts bounds ExpiredRestart, so a list that can never finish
// within the compaction window fails instead of looping forever.
const MaxListRestarts = 3

// String names the strategy as its constant does.
func (s ExpiredStrategy) String() string {
	switch s {
	case ExpiredFail:
		return "ExpiredFail"
	case ExpiredContinueInconsistent:
		return "ExpiredContinueInconsistent"
	case ExpiredRestart:
		return "ExpiredRestart"
	}
	return fmt.Sprintf("ExpiredStrategy(%d)", int(s))
}

// ExpiredError reports that a paginated list could not finish because its
// continue token expired. The API server says so with a 410 whose reason is
// Expired or, from some code paths, Gone; ExpiredError reports reason
// Expired in both cases (its Status method), so apierrors.IsResourceExpired(err)
// is true for every ExpiredError and apierrors.IsGone(err) is not. The
// server's own error is Err (errors.As reaches it through Unwrap).
type ExpiredError struct {
	// Items is how many items were yielded before the error.
	Items int
	// Pages is how many pages had been read.
	Pages int
	// Restarts is how many times ExpiredRestart restarted the list.
	Restarts int
	// Err is the API server's error.
	Err error
}

// Error says which list expired and what to do.
func (e *ExpiredError) Error() string {
	return fmt.Sprintf("client: list expired after %d items in %d pages (%d restarts): %v; "+
		"use a bigger page size, consume pages faster, or choose OnExpired(ExpiredContinueInconsistent) or OnExpired(ExpiredRestart)",
		e.Items, e.Pages, e.Restarts, e.Err)
}

// Unwrap returns the API server's error.
func (e *ExpiredError) Unwrap() error { return e.Err }

// Status makes the error an API status with reason Expired and code 410,
// whatever reason the server gave, for apierrors.IsResourceExpired.
func (e *ExpiredError) Status() metav1.Status {
	st := metav1.Status{Status: metav1.StatusFailure, Message: e.Error()}
	var se apierrors.APIStatus
	if errors.As(e.Err, &se) {
		st = se.Status()
	}
	st.Reason, st.Code = metav1.StatusReasonExpired, 410
	return st
}

// ListInfo describes a finished (or failed) list; pass a pointer with
// [WithListInfo] to receive it.
type ListInfo struct {
	// ResourceVersion is the snapshot the first page was read at: start a
	// watch from it to see every later change (unless Inconsistent).
	ResourceVersion string
	// Pages is the number of requests made.
	Pages int
	// Items is the number of items yielded.
	Items int
	// Inconsistent is true when ExpiredContinueInconsistent had to switch to
	// a newer snapshot midway.
	Inconsistent bool
	// Restarts counts ExpiredRestart restarts.
	Restarts int
}

// ListOption configures List, ListDynamic, Collect and Count.
type ListOption interface{ applyList(*listOptions) }

type listOptionFunc func(*listOptions)

func (f listOptionFunc) applyList(o *listOptions) { f(o) }

type listOptions struct {
	pageSize      int64
	labelSelector string
	fieldSelector string
	rv            string
	rvMatch       metav1.ResourceVersionMatch
	expired       ExpiredStrategy
	info          *ListInfo
}

// PageSize sets the number of items per request. Default [DefaultPageSize];
// must be > 0. Memory use is bounded by one page plus what the caller keeps.
func PageSize(n int64) ListOption { return listOptionFunc(func(o *listOptions) { o.pageSize = n }) }

// AtResourceVersion sets the first page's resourceVersion and its match
// semantics (see the Kubernetes API concepts: "" = most recent, read from
// etcd; "0" with NotOlderThan = any, possibly from the watch cache; an exact
// version needs ResourceVersionMatchExact). Default: most recent.
func AtResourceVersion(rv string, match metav1.ResourceVersionMatch) ListOption {
	return listOptionFunc(func(o *listOptions) { o.rv, o.rvMatch = rv, match })
}

// OnExpired chooses what happens when a continue token expires. Default
// [ExpiredFail].
func OnExpired(s ExpiredStrategy) ListOption {
	return listOptionFunc(func(o *listOptions) { o.expired = s })
}

// WithListInfo fills *info when the iteration ends (normally, with an error,
// or because the caller stopped early).
func WithListInfo(info *ListInfo) ListOption {
	return listOptionFunc(func(o *listOptions) { o.info = info })
}

// errNilList is the error for a nil ListFunc or ResourceInterface.
func errNilList(fn string) error {
	return fmt.Errorf("client: %s: the list function is nil; pass a client's List method, e.g. cs.CoreV1().Pods(ns).List", fn)
}

func newListOptions(opts []ListOption) (listOptions, error) {
	o := listOptions{pageSize: DefaultPageSize}
	for _, opt := range opts {
		if opt != nil {
			opt.applyList(&o)
		}
	}
	var errs []error
	if o.pageSize <= 0 {
		errs = append(errs, fmt.Errorf("client: PageSize(%d): must be > 0; omit it for %d", o.pageSize, DefaultPageSize))
	}
	if o.expired < ExpiredFail || o.expired > ExpiredRestart {
		errs = append(errs, fmt.Errorf("client: OnExpired(%v): unknown strategy; use ExpiredFail, ExpiredContinueInconsistent or ExpiredRestart", o.expired))
	}
	if err := checkSelectors(o.labelSelector, o.fieldSelector); err != nil {
		errs = append(errs, err)
	}
	if o.rvMatch != "" && o.rv == "" {
		errs = append(errs, fmt.Errorf("client: AtResourceVersion(\"\", %q): a resourceVersion match needs a resourceVersion; pass one, or an empty match for the most recent", o.rvMatch))
	}
	return o, errors.Join(errs...)
}

// List streams the items of any list call page by page (Limit and Continue),
// typed, without type assertions:
//
//	for pod, err := range client.List[*corev1.Pod](ctx, cs.CoreV1().Pods("").List) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(pod.Name)
//	}
//
// T is the pointer to the item type of the list (*corev1.Pod for
// *corev1.PodList), as for [ApplyConfiguration], watch.New and informer.For;
// a value type (List[corev1.Pod]) does not compile. Each item is a shallow
// copy of the page's, so keeping one does not keep its whole page alive;
// memory stays bounded by one page plus what the caller keeps. An error is
// yielded at most once, as the last element: a failed request, an expired
// continue token (see [OnExpired]), ctx's error when it is cancelled
// (checked before every item), or a T that does not match the list type.
// Breaking out of the loop stops it without further requests.
func List[T Object, L metav1.ListInterface](ctx context.Context, list ListFunc[L], opts ...ListOption) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		if list == nil {
			yield(zero, errNilList("List"))
			return
		}
		o, err := newListOptions(opts)
		if err != nil {
			yield(zero, err)
			return
		}
		p := pager[T, L]{list: list, o: o}
		p.run(ctx, func(items reflect.Value) bool {
			return eachItem(items, true, func(item T) bool {
				if err := ctx.Err(); err != nil {
					p.err = err
					return false
				}
				p.info.Items++
				if !yield(item, nil) {
					p.stopped = true
					return false
				}
				return true
			})
		})
		if p.err != nil && !p.stopped {
			yield(zero, p.err)
		}
	}
}

// eachItem calls f with each element of items, a []T or a []E where T is
// *E (checked by itemsOf), as a T, until f returns false; it reports
// whether f always returned true. With clone, a T pointing to an E points to
// a shallow copy of it, not into the page.
func eachItem[T Object](items reflect.Value, clone bool, f func(T) bool) bool {
	if page, ok := items.Interface().([]T); ok {
		for i := range page {
			if !f(page[i]) {
				return false
			}
		}
		return true
	}
	for i := range items.Len() {
		v := items.Index(i).Addr()
		if clone {
			v = reflect.New(v.Type().Elem())
			v.Elem().Set(items.Index(i))
		}
		if !f(v.Interface().(T)) {
			return false
		}
	}
	return true
}

// ListDynamic is List for the dynamic client (any resource, CRDs included):
//
//	for obj, err := range client.ListDynamic(ctx, c.Dynamic().Resource(gvr).Namespace(ns)) { ... }
func ListDynamic(ctx context.Context, ri dynamic.ResourceInterface, opts ...ListOption) iter.Seq2[*unstructured.Unstructured, error] {
	if ri == nil || reflect.ValueOf(ri).Kind() == reflect.Pointer && reflect.ValueOf(ri).IsNil() {
		return func(yield func(*unstructured.Unstructured, error) bool) {
			yield(nil, errors.New("client: ListDynamic: the resource interface is nil; pass c.Dynamic().Resource(gvr) or .Namespace(ns)"))
		}
	}
	return List[*unstructured.Unstructured](ctx, ri.List, opts...)
}

// ListMetadata is List for metadata only: names, labels, annotations, owner
// references and the like of any resource, as *metav1.PartialObjectMetadata,
// without spec or status, so a page weighs a fraction of the full objects'
// (for Pods, about a tenth). namespace "" lists all namespaces (and is the
// only choice for cluster-scoped resources):
//
//	for m, err := range client.ListMetadata(ctx, c, corev1.SchemeGroupVersion.WithResource("pods"), "default") { ... }
func ListMetadata(ctx context.Context, c *Client, gvr schema.GroupVersionResource, namespace string, opts ...ListOption) iter.Seq2[*metav1.PartialObjectMetadata, error] {
	if c == nil || gvr.Resource == "" || gvr.Version == "" {
		return func(yield func(*metav1.PartialObjectMetadata, error) bool) {
			if c == nil {
				yield(nil, errors.New("client: ListMetadata: the client is nil; build one with client.New"))
				return
			}
			yield(nil, fmt.Errorf("client: ListMetadata(%v): name the version and the plural resource, e.g. {Version: \"v1\", Resource: \"pods\"}", gvr))
		}
	}
	return List[*metav1.PartialObjectMetadata](ctx, c.meta.Resource(gvr).Namespace(namespace).List, opts...)
}

// Collect reads every page and returns all items, T being the pointer to
// the item type as for [List] (Collect[*corev1.ConfigMap]). The items point
// into the pages read, without a copy. With ExpiredRestart a restart
// discards what was collected so far, so the result is always one
// consistent snapshot (or an error).
func Collect[T Object, L metav1.ListInterface](ctx context.Context, list ListFunc[L], opts ...ListOption) ([]T, error) {
	if list == nil {
		return nil, errNilList("Collect")
	}
	o, err := newListOptions(opts)
	if err != nil {
		return nil, err
	}
	var out []T
	p := pager[T, L]{list: list, o: o, onRestart: func() { out = out[:0] }}
	p.run(ctx, func(items reflect.Value) bool {
		eachItem(items, false, func(item T) bool { out = append(out, item); return true })
		p.info.Items = len(out)
		return true
	})
	if p.err != nil {
		return nil, p.err
	}
	return out, nil
}

// Count returns how many items the list has, without keeping them. Without
// selectors it asks for a single item and uses the server's
// remainingItemCount (one request); otherwise it pages through the list.
func Count[L metav1.ListInterface](ctx context.Context, list ListFunc[L], opts ...ListOption) (int64, error) {
	if list == nil {
		return 0, errNilList("Count")
	}
	o, err := newListOptions(opts)
	if err != nil {
		return 0, err
	}
	if o.labelSelector == "" && o.fieldSelector == "" {
		lo := o.first()
		lo.Limit = 1
		l, err := list(ctx, lo)
		if err != nil {
			return 0, fmt.Errorf("client: count: %w", err)
		}
		n, err := itemsLen(l)
		if err != nil {
			return 0, err
		}
		if l.GetContinue() == "" {
			return int64(n), nil
		}
		if rem := l.GetRemainingItemCount(); rem != nil {
			return int64(n) + *rem, nil
		}
	}
	var n int64
	p := pager[*unstructured.Unstructured, L]{list: list, o: o, onRestart: func() { n = 0 }, anyItemType: true}
	p.run(ctx, func(items reflect.Value) bool {
		n += int64(items.Len())
		p.info.Items = int(n)
		return true
	})
	if p.err != nil {
		return 0, p.err
	}
	return n, nil
}

// pager runs the Limit/Continue loop and the expired-token strategies.
type pager[T Object, L metav1.ListInterface] struct {
	list        ListFunc[L]
	o           listOptions
	onRestart   func()
	anyItemType bool // Count does not care about T

	info    ListInfo
	err     error
	stopped bool // the consumer stopped early
}

func (o *listOptions) first() metav1.ListOptions {
	return metav1.ListOptions{
		LabelSelector:        o.labelSelector,
		FieldSelector:        o.fieldSelector,
		Limit:                o.pageSize,
		ResourceVersion:      o.rv,
		ResourceVersionMatch: o.rvMatch,
	}
}

// run calls page with each page's Items slice (as a reflect.Value of []T)
// until the list ends, page returns false, or an error is recorded in p.err.
func (p *pager[T, L]) run(ctx context.Context, page func(items reflect.Value) bool) {
	defer func() {
		if p.o.info != nil {
			*p.o.info = p.info
		}
	}()
	lo := p.o.first()
	for {
		if err := ctx.Err(); err != nil {
			p.err = err
			return
		}
		l, err := p.list(ctx, lo)
		if err != nil {
			if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) || lo.Continue == "" {
				if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
					p.err = ctx.Err()
				} else {
					p.err = fmt.Errorf("client: list page %d: %w", p.info.Pages+1, err)
				}
				return
			}
			switch next := freshContinue(err); {
			case p.o.expired == ExpiredContinueInconsistent && next != "":
				p.info.Inconsistent = true
				lo = metav1.ListOptions{LabelSelector: lo.LabelSelector, FieldSelector: lo.FieldSelector, Limit: lo.Limit, Continue: next}
				continue
			case p.o.expired == ExpiredRestart && p.info.Restarts < MaxListRestarts:
				p.info.Restarts++
				if p.onRestart != nil {
					p.onRestart()
				}
				lo = p.o.first()
				continue
			}
			p.err = &ExpiredError{Items: p.info.Items, Pages: p.info.Pages, Restarts: p.info.Restarts, Err: err}
			return
		}
		p.info.Pages++
		if p.info.Pages == 1 || p.info.Restarts > 0 && lo.Continue == "" {
			p.info.ResourceVersion = l.GetResourceVersion()
		}
		items, err := itemsOf[T](l, p.anyItemType)
		if err != nil {
			p.err = err
			return
		}
		if !page(items) {
			return
		}
		next := l.GetContinue()
		if next == "" {
			return
		}
		lo = metav1.ListOptions{LabelSelector: lo.LabelSelector, FieldSelector: lo.FieldSelector, Limit: lo.Limit, Continue: next}
	}
}

// freshContinue returns the continue token a 410 for an expired continue
// token carries (the server's offer to go on from a newer snapshot).
func freshContinue(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return se.Status().ListMeta.Continue
	}
	return ""
}

// itemsOf returns l's Items field, checking that its elements are T or
// that T points to them.
func itemsOf[T Object](l any, anyType bool) (reflect.Value, error) {
	v := reflect.ValueOf(l)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, fmt.Errorf("client: list returned %T, want a pointer to a list struct", l)
	}
	items := v.Elem().FieldByName("Items")
	if !items.IsValid() || items.Kind() != reflect.Slice {
		return reflect.Value{}, fmt.Errorf("client: list type %T has no Items slice", l)
	}
	want, elem := reflect.TypeFor[T](), items.Type().Elem()
	if !anyType && elem != want && reflect.PointerTo(elem) != want {
		use := elem
		if elem.Kind() != reflect.Pointer {
			use = reflect.PointerTo(elem)
		}
		return reflect.Value{}, fmt.Errorf("client: List[%s] used with %T, whose items are %s: use List[%s]", want, l, elem, use)
	}
	return items, nil
}

func itemsLen(l any) (int, error) {
	items, err := itemsOf[*unstructured.Unstructured](l, true)
	if err != nil {
		return 0, err
	}
	return items.Len(), nil
}
