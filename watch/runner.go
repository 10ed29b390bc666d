package watch

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubekit/kubekit/client"
)

// Run watches until ctx is cancelled (then it saves the checkpoint and
// returns nil) or a fatal error: 401/403 and other errors retrying cannot
// fix, a handler that keeps failing or panics ([*HandlerError]), a bad
// checkpoint ([ErrBadCheckpoint], [ErrCheckpointMismatch]), checkpoint saves
// that keep failing ([ErrSaveFailed]), a checkpoint another writer saved to
// since this Run read it ([ErrCheckpointConflict]: Run writes nothing more)
// or, with gap recovery off, 410 Gone ([ErrExpired]). Stream ends and
// network errors are retried.
//
// Events are delivered one at a time, in resourceVersion order per object,
// at least once: the checkpoint only moves past an event once h returned
// nil for it. Only one Run per Watcher may be active at a time. If ctx is
// already done when Run is called, Run returns nil at once.
func (w *Watcher[T]) Run(ctx context.Context, h Handler[T]) error {
	if h == nil {
		return errors.New("watch: Run(ctx, nil): pass a handler")
	}
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("watch: Run: this Watcher is already running; create another Watcher for a second watch")
	}
	defer w.running.Store(false)
	if ctx.Err() != nil {
		return nil
	}
	r := &runner[T]{w: w, h: h, s: newSaver(&w.o, w.identity, w.log)}
	r.s.observeSaves(w.o.metrics, w.resource)
	return r.run(ctx)
}

// runner is one Run: the list/watch loop and delivery. What is saved, and
// when, is the saver's business.
type runner[T Object] struct {
	w *Watcher[T]
	h Handler[T]
	s *saver

	// While a stream runs, s is shared with saveWhileQuiet's goroutine:
	// both call it with mu held.
	mu      sync.Mutex
	saveErr error // why saveWhileQuiet closed the stream
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
		r.s.restore(st)
		relist = false
	}
	r.s.start(ctx)
	defer func() {
		// A clean stop and a fatal error both save: the state only holds
		// handled events. A bounded, uncancelled context lets it finish.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if serr := r.s.stop(sctx); serr != nil && err == nil {
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
				return fmt.Errorf("%w: watch %s from resourceVersion %s (gap recovery is off, see WithGapRecovery): %w", ErrExpired, w.identity, r.s.position(), werr)
			}
			w.log.Info("resume point expired; re-listing to recover the gap", "resourceVersion", r.s.position())
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
	if errors.As(err, &he) || errors.Is(err, errUnexpected) || errors.Is(err, ErrSaveFailed) {
		return true
	}
	return apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) || apierrors.IsNotFound(err) ||
		apierrors.IsBadRequest(err) || apierrors.IsInvalid(err) || apierrors.IsMethodNotSupported(err) ||
		apierrors.IsNotAcceptable(err) || apierrors.IsUnsupportedMediaType(err)
}

var errUnexpected = errors.New("unexpected object")

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

// page is one page of a list, its items as T, in the shape client's
// paginated List reads.
type page[T Object] struct {
	metav1.ListMeta
	Items []T
}

// listPage makes one list request and returns its page.
func (r *runner[T]) listPage(ctx context.Context, lo metav1.ListOptions) (*page[T], error) {
	l, err := r.w.list(ctx, lo)
	if err != nil {
		return nil, err
	}
	lm, err := meta.ListAccessor(l)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnexpected, err)
	}
	p := &page[T]{ListMeta: metav1.ListMeta{ResourceVersion: lm.GetResourceVersion(), Continue: lm.GetContinue()}}
	err = meta.EachListItem(l, func(o runtime.Object) error {
		t, ok := o.(T)
		if !ok {
			return fmt.Errorf("%w: list item is %T", errUnexpected, o)
		}
		p.Items = append(p.Items, t)
		return nil
	})
	return p, err
}

// relist lists everything (paginated, through client's List: an expired
// continue token starts the list over, up to client.MaxListRestarts times)
// and delivers what differs from the known set: as initial ADDED events on
// a first start, as synthetic events after a gap.
func (r *runner[T]) relist(ctx context.Context, synthetic bool) error {
	w := r.w
	var info client.ListInfo
	items, err := client.Collect[T](ctx, r.listPage, client.PageSize(w.o.pageSize),
		client.LabelSelector(w.o.labelSelector), client.FieldSelector(w.o.fieldSelector),
		client.OnExpired(client.ExpiredRestart), client.WithListInfo(&info))
	if err != nil {
		return r.apiErr("list", err)
	}
	deliver := w.o.initialEvents || synthetic
	seen := make(map[objKey]struct{}, len(items))
	if err := r.s.sync(); err != nil {
		return err
	}
	r.s.reserve(len(items)) // a first list: size the known set once
	for _, o := range items {
		k := key(o.GetNamespace(), o.GetName())
		seen[k] = struct{}{}
		old, known := r.s.lookup(k)
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
			r.s.record(change{k: k, ref: ref{uid: o.GetUID(), rv: o.GetResourceVersion()}})
		}
	}
	for _, k := range r.s.missing(seen) {
		old, _ := r.s.lookup(k)
		if err := r.deliver(ctx, Event[T]{Type: Deleted, Object: r.tomb(k, old), Synthetic: true}); err != nil {
			return err
		}
	}
	r.s.moveTo(info.ResourceVersion, true)
	if m := w.o.metrics; m != nil {
		reason := "start"
		if synthetic {
			reason = "gap"
		}
		m.Relisted(w.resource, reason)
	}
	return r.s.saveNow(ctx)
}

func (r *runner[T]) tomb(k objKey, old ref) T {
	t := r.w.tombstone()
	t.SetNamespace(k.ns)
	t.SetName(k.name)
	t.SetUID(old.uid)
	t.SetResourceVersion(old.rv)
	return t
}

// deliver calls the handler until it succeeds, then records the event for
// the known set and the next save. It returns ctx's error or a *HandlerError.
func (r *runner[T]) deliver(ctx context.Context, e Event[T]) error {
	k, err := r.handle(ctx, e)
	if err != nil {
		return err
	}
	r.handled(e, k)
	return nil
}

// handle calls the handler until it succeeds and returns the object's key,
// or ctx's error or a *HandlerError.
func (r *runner[T]) handle(ctx context.Context, e Event[T]) (objKey, error) {
	bo := r.w.o.handlerBackoff
	k := key(e.Object.GetNamespace(), e.Object.GetName())
	for attempt := 1; ; attempt++ {
		err := r.call(ctx, e, k)
		if err == nil {
			return k, nil
		}
		if ctx.Err() != nil {
			return k, ctx.Err()
		}
		if n := r.w.o.handlerRetries; n >= 0 && attempt > n {
			return k, &HandlerError{Type: e.Type, Key: k.String(), Attempts: attempt, Err: err}
		}
		d := bo.Step()
		r.w.log.Info("handler failed; retrying", "event", e.Type, "object", k.String(), "attempt", attempt, "after", d, "error", err.Error())
		if !sleep(ctx, d) {
			return k, ctx.Err()
		}
	}
}

// handled records a handled event for the known set and the next save.
// While a stream runs, call it with r.mu held.
func (r *runner[T]) handled(e Event[T], k objKey) {
	r.s.record(change{k: k, ref: ref{uid: e.Object.GetUID(), rv: e.Object.GetResourceVersion()}, del: e.Type == Deleted})
	if m := r.w.o.metrics; m != nil {
		m.EventDelivered(r.w.resource, e.Type, e.Synthetic)
	}
}

// call runs the handler once; a panic is recovered, logged with its stack
// and returned as an error wrapping ErrHandlerPanic.
func (r *runner[T]) call(ctx context.Context, e Event[T], k objKey) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrHandlerPanic, p)
			r.w.log.Error(err, "handler panicked", "event", e.Type, "object", k.String(), "stack", string(debug.Stack()))
		}
	}()
	return r.h(ctx, e)
}
