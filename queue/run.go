package queue

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// Errors returned by [Queue.Run] and passed to the drop callback; test them
// with errors.Is.
var (
	// ErrPanic wraps the value of a panic recovered from a reconcile.
	ErrPanic = errors.New("reconcile panicked")
	// ErrDrainTimeout is returned by Run when reconciles were still running
	// when the drain timeout passed.
	ErrDrainTimeout = errors.New("reconciles still running after the drain timeout")
	// ErrAlreadyRunning is returned by a second call to Run on the same queue.
	ErrAlreadyRunning = errors.New("Run was already called on this queue")
)

// Result tells [Queue.Run] what to do with an item whose reconcile succeeded.
// The zero Result means "done": the item's backoff is reset and it is not
// queued again until someone adds it.
type Result struct {
	// RequeueAfter > 0 adds the item again after this delay (and still resets
	// its backoff), for periodic work such as polling an external system.
	// It is ignored when the reconcile returns an error.
	RequeueAfter time.Duration
}

// RequeueAfter returns a Result that processes the item again after d, and a
// nil error, for "return queue.RequeueAfter(time.Minute)" in a reconcile.
func RequeueAfter(d time.Duration) (Result, error) { return Result{RequeueAfter: d}, nil }

// ReconcileFunc processes one item. A nil error with a zero [Result] means
// success; an error means "retry with backoff" (see [WithMaxRetries]). ctx is
// cancelled only when Run gives up waiting for in-flight reconciles (see
// [WithDrainTimeout]), not as soon as Run's own context is cancelled, so a
// reconcile that was started is allowed to finish.
type ReconcileFunc[T comparable] func(ctx context.Context, item T) (Result, error)

// Run processes items with workers goroutines until ctx is cancelled or the
// queue is shut down, and returns only when its goroutines have stopped.
// After a ShutDown from elsewhere, Run first finishes the items already
// queued.
//
// For each item every worker does Get, reconcile, Done; on success it calls
// Forget (and AddAfter for [Result.RequeueAfter]); on error it calls
// AddRateLimited until the item failed more than [WithMaxRetries] times in a
// row, then Forgets it, logs it and calls the [WithOnDrop] callback. A panic
// in reconcile is recovered, logged with its stack and handled as an error
// wrapping [ErrPanic].
//
// When ctx is cancelled, Run shuts the queue down, workers stop taking items
// (queued items are dropped: a controller's informer adds them again on its
// next start) and Run waits for the reconciles in flight, at most
// [WithDrainTimeout]. It returns nil after a clean stop, [ErrDrainTimeout] if
// reconciles were still running (their context is then cancelled and their
// goroutines exit when they return), or an error for bad arguments. A queue
// can be Run once; after Run it is shut down.
func (q *Queue[T]) Run(ctx context.Context, workers int, reconcile ReconcileFunc[T]) error {
	if workers < 1 {
		return fmt.Errorf("queue.Run: workers=%d: need at least 1 (one goroutine per worker)", workers)
	}
	if reconcile == nil {
		return errors.New("queue.Run: nil reconcile func: pass a func(ctx, item) (queue.Result, error)")
	}
	if !q.started.CompareAndSwap(false, true) {
		return fmt.Errorf("queue.Run: %w", ErrAlreadyRunning)
	}
	if err := ctx.Err(); err != nil {
		q.ShutDown()
		return nil
	}
	log := q.logger
	if !q.loggerSet {
		log = klog.FromContext(ctx)
	}
	// Reconciles get a context that outlives ctx until the drain timeout.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	var stopping atomic.Bool
	var running atomic.Int64 // workers that have not returned
	w := &worker[T]{q: q, stopping: &stopping, ctx: workCtx, reconcile: reconcile, log: log}
	running.Store(int64(workers))
	for range workers {
		wg.Go(func() {
			defer running.Add(-1)
			w.loop()
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()

	select {
	case <-done: // someone shut the queue down
		cancelWork()
		q.ShutDown()
		return nil
	case <-ctx.Done():
	}
	stopping.Store(true)
	q.ShutDown() // wakes idle workers; Get returns shutdown once they stop
	// Wall-clock on purpose: the bound must hold even with a fake clock.
	t := time.NewTimer(q.drainTimeout)
	defer t.Stop()
	select {
	case <-done:
		cancelWork()
		return nil
	case <-t.C:
		// After ShutDown a worker only keeps running inside a reconcile.
		busy := running.Load()
		cancelWork()
		return fmt.Errorf("queue.Run: %w: %d of %d workers still busy after %v", ErrDrainTimeout, busy, workers, q.drainTimeout)
	}
}

type worker[T comparable] struct {
	q         *Queue[T]
	ctx       context.Context
	reconcile ReconcileFunc[T]
	log       klog.Logger
	stopping  *atomic.Bool // set when Run's context is done
}

func (w *worker[T]) loop() {
	for {
		item, shutdown := w.q.q.Get()
		if shutdown {
			return
		}
		if w.stopping.Load() {
			// Stop taking items: hand it back untouched and leave.
			w.q.q.Done(item)
			return
		}
		w.process(item)
	}
}

func (w *worker[T]) process(item T) {
	res, err := w.call(item)
	q := w.q.q
	defer q.Done(item)
	if err == nil {
		q.Forget(item)
		if res.RequeueAfter > 0 {
			q.AddAfter(item, res.RequeueAfter)
		}
		return
	}
	if n := q.NumRequeues(item); w.q.maxRetries < 0 || n < w.q.maxRetries {
		w.log.Error(err, "Reconcile failed, retrying", "item", item, "retry", n+1)
		q.AddRateLimited(item)
		return
	}
	q.Forget(item)
	w.log.Error(err, "Dropping item after too many failed reconciles", "item", item, "maxRetries", w.q.maxRetries)
	if w.q.onDrop != nil {
		w.q.onDrop(item, err)
	}
}

func (w *worker[T]) call(item T) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, r)
			w.log.Error(err, "Reconcile panicked", "item", item, "stack", string(debug.Stack()))
		}
	}()
	return w.reconcile(w.ctx, item)
}
