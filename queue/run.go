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
	// ErrTerminal marks an error that retrying cannot fix; see [TerminalError].
	ErrTerminal = errors.New("terminal error")
)

// TerminalError wraps err so that [Queue.Run] does not retry the item: it is
// forgotten, logged and passed to the [WithOnDrop] callback at once, as
// controller-runtime's reconcile.TerminalError. Use it for failures only a
// change of the object can fix (an invalid spec); the next Add (the next
// event about the object) reconciles it again. errors.Is(err, ErrTerminal)
// reports it, and errors.Is/As still see err. TerminalError(nil) is nil.
func TerminalError(err error) error {
	if err == nil {
		return nil
	}
	return &terminalError{err}
}

type terminalError struct{ err error }

func (e *terminalError) Error() string        { return "terminal error: " + e.err.Error() }
func (e *terminalError) Unwrap() error        { return e.err }
func (e *terminalError) Is(target error) bool { return target == ErrTerminal }

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

// Outcome is how one reconcile of [Queue.Run] ended, as reported to
// [RunMetrics].
type Outcome string

// The outcomes of a reconcile.
const (
	OutcomeSuccess       Outcome = "success"        // nil error, zero Result
	OutcomeRequeueAfter  Outcome = "requeue_after"  // nil error, Result.RequeueAfter > 0
	OutcomeError         Outcome = "error"          // an error: retried (or dropped after the maximum)
	OutcomeTerminalError Outcome = "terminal_error" // a [TerminalError]: dropped at once
	OutcomePanic         Outcome = "panic"          // a recovered panic: retried like an error
)

// RunMetrics observes the reconciles of [Queue.Run]. When the
// workqueue.MetricsProvider given to [WithMetricsProvider] also implements
// RunMetrics (queue/prometheus's Provider does), Run reports to it under the
// queue's name; the calls come from the worker goroutines.
type RunMetrics interface {
	// ReconcileStarted is called when a worker starts a reconcile.
	ReconcileStarted(queue string)
	// ReconcileDone is called when it returned, with how and how long.
	ReconcileDone(queue string, outcome Outcome, took time.Duration)
}

// ReconcileFunc processes one item. A nil error with a zero [Result] means
// success; an error means "retry with backoff" (see [WithMaxRetries]), unless
// it is a [TerminalError]. ctx is cancelled when the reconcile runs longer
// than [WithReconcileTimeout], and when Run gives up waiting for in-flight
// reconciles (see [WithDrainTimeout]), not as soon as Run's own context is
// cancelled, so a reconcile that was started is allowed to finish.
type ReconcileFunc[T comparable] func(ctx context.Context, item T) (Result, error)

// Run processes items with workers goroutines until ctx is cancelled or the
// queue is shut down, and returns only when its goroutines have stopped.
// After a ShutDown from elsewhere, Run first finishes the items already
// queued.
//
// For each item every worker does Get, reconcile, Done; on success it calls
// Forget (and AddAfter for [Result.RequeueAfter]); on error it calls
// AddRateLimited (by default forever, with a backoff capped at 1000s; see
// [WithMaxRetries]), and once the item failed more than the maximum, or at
// once for a [TerminalError], it Forgets it, logs it and calls the
// [WithOnDrop] callback. A panic in reconcile is recovered, logged with its
// stack and handled as an error wrapping [ErrPanic].
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
	w := &worker[T]{q: q, stopping: &stopping, ctx: workCtx, reconcile: reconcile, log: log, timeout: q.reconcileTimeout}
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
	timeout   time.Duration // per reconcile; 0 means none
	stopping  *atomic.Bool  // set when Run's context is done
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
	m := w.q.metrics
	var start time.Time
	if m != nil {
		start = time.Now()
		m.ReconcileStarted(w.q.name)
	}
	res, err := w.call(item)
	if m != nil {
		m.ReconcileDone(w.q.name, outcome(res, err), time.Since(start))
	}
	q := w.q.q
	defer q.Done(item)
	if err == nil {
		q.Forget(item)
		if res.RequeueAfter > 0 {
			q.AddAfter(item, res.RequeueAfter)
		}
		return
	}
	if errors.Is(err, ErrTerminal) {
		q.Forget(item)
		w.log.Error(err, "Reconcile failed with a terminal error, not retrying", "item", item)
		if w.q.onDrop != nil {
			w.q.onDrop(item, err)
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

func outcome(res Result, err error) Outcome {
	switch {
	case errors.Is(err, ErrTerminal):
		return OutcomeTerminalError
	case errors.Is(err, ErrPanic):
		return OutcomePanic
	case err != nil:
		return OutcomeError
	case res.RequeueAfter > 0:
		return OutcomeRequeueAfter
	}
	return OutcomeSuccess
}

func (w *worker[T]) call(item T) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrPanic, r)
			w.log.Error(err, "Reconcile panicked", "item", item, "stack", string(debug.Stack()))
		}
	}()
	ctx := w.ctx
	if w.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.timeout)
		defer cancel()
	}
	return w.reconcile(ctx, item)
}
