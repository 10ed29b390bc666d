package queue

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Queue is a typed work queue: client-go's rate-limiting queue (which is also
// a delaying queue and a plain queue) plus a worker loop, [Queue.Run].
//
// All methods are safe for concurrent use. Queue implements
// workqueue.TypedRateLimitingInterface[T], so it can be passed to code written
// for client-go's queues.
type Queue[T comparable] struct {
	q                workqueue.TypedRateLimitingInterface[T]
	base             *workqueue.Typed[T] // the plain layer inside q
	clock            clock.WithTicker
	maxRetries       int
	onDrop           func(T, error)
	logger           logr.Logger
	loggerSet        bool
	drainTimeout     time.Duration
	reconcileTimeout time.Duration
	name             string
	metrics          RunMetrics  // the provider, if it implements RunMetrics
	started          atomic.Bool // set by the first Run
}

var _ workqueue.TypedRateLimitingInterface[string] = (*Queue[string])(nil)

// New returns an empty queue for items of type T. Without options it is
// unnamed (no metrics), retries with client-go's controller defaults (see
// [DefaultBackoffBase]) and, in [Queue.Run], retries a failing item until
// it succeeds ([DefaultMaxRetries]) unless its error is a [TerminalError].
//
// The queue starts one goroutine (the delaying layer's timer loop); call
// [Queue.ShutDown] (or let [Queue.Run] return) to stop it.
func New[T comparable](opts ...Option) (*Queue[T], error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	var zero T
	var rl workqueue.TypedRateLimiter[T]
	if o.rateLimiter != nil {
		var ok bool
		if rl, ok = o.rateLimiter.(workqueue.TypedRateLimiter[T]); !ok {
			return nil, fmt.Errorf("queue: WithRateLimiter(%T): not a rate limiter for this queue's items; pass a workqueue.TypedRateLimiter[%T]", o.rateLimiter, zero)
		}
	}
	var onDrop func(T, error)
	if o.onDrop != nil {
		var ok bool
		if onDrop, ok = o.onDrop.(func(T, error)); !ok {
			return nil, fmt.Errorf("queue: WithOnDrop(%T): not a callback for this queue's items; pass a func(%T, error)", o.onDrop, zero)
		}
	}
	c := o.clock
	if c == nil {
		c = clock.RealClock{}
	}
	if rl == nil {
		rl = workqueue.NewTypedItemExponentialFailureRateLimiter[T](o.backoffBase, o.backoffMax)
		if o.qps > 0 {
			rl = workqueue.NewTypedMaxOfRateLimiter(rl, &bucket[T]{clock: c, limiter: rate.NewLimiter(rate.Limit(o.qps), o.burst)})
		}
	}
	// Build client-go's three layers by hand to keep the plain queue: its
	// ShutDown (unlike the delaying layer's, which runs once) always releases
	// a waiting ShutDownWithDrain, which Drain relies on.
	base := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[T]{
		Name:            o.name,
		MetricsProvider: o.provider,
		Clock:           c,
	})
	delaying := workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[T]{
		Name:            o.name,
		MetricsProvider: o.provider,
		Clock:           c,
		Queue:           base,
	})
	q := &Queue[T]{
		base: base,
		q: workqueue.NewTypedRateLimitingQueueWithConfig(rl, workqueue.TypedRateLimitingQueueConfig[T]{
			Name:            o.name,
			MetricsProvider: o.provider,
			Clock:           c,
			DelayingQueue:   delaying,
		}),
		clock:            c,
		maxRetries:       o.maxRetries,
		onDrop:           onDrop,
		drainTimeout:     o.drainTimeout,
		reconcileTimeout: o.timeout,
		name:             o.name,
		logger:           o.logger,
		loggerSet:        o.loggerSet,
	}
	q.metrics, _ = o.provider.(RunMetrics)
	return q, nil
}

// bucket is client-go's TypedBucketRateLimiter reading time from the queue's
// clock, so token-bucket pacing follows a fake clock in tests.
type bucket[T comparable] struct {
	clock   clock.PassiveClock
	limiter *rate.Limiter
}

func (b *bucket[T]) When(T) time.Duration {
	now := b.clock.Now()
	return b.limiter.ReserveN(now, 1).DelayFrom(now)
}

func (b *bucket[T]) NumRequeues(T) int { return 0 }
func (b *bucket[T]) Forget(T)          {}

// Add marks item as needing processing. An item already waiting is not added
// twice; an item being processed (between Get and Done) is queued again when
// Done is called. Ignored after ShutDown.
func (q *Queue[T]) Add(item T) { q.q.Add(item) }

// AddAfter adds item after the delay (at once if delay <= 0). If the item is
// already waiting, the earlier of the two times wins. Ignored after ShutDown.
func (q *Queue[T]) AddAfter(item T, delay time.Duration) { q.q.AddAfter(item, delay) }

// AddRateLimited adds item after the delay the rate limiter gives it (its
// per-item backoff, paced by the overall bucket). Ignored after ShutDown: the
// rate limiter is not consulted, so no requeue is counted and no token spent.
func (q *Queue[T]) AddRateLimited(item T) {
	if q.q.ShuttingDown() {
		return
	}
	q.q.AddRateLimited(item)
}

// Forget resets item's backoff. It does not remove the item from the queue
// and does not replace Done.
func (q *Queue[T]) Forget(item T) { q.q.Forget(item) }

// NumRequeues returns how many times item was added with AddRateLimited since
// it was last forgotten.
func (q *Queue[T]) NumRequeues(item T) int { return q.q.NumRequeues(item) }

// Get blocks until an item is ready and returns it, or returns shutdown=true
// once the queue is shut down and empty. Every item returned must be passed
// to Done. Prefer [Queue.Run], which does this for you.
func (q *Queue[T]) Get() (item T, shutdown bool) { return q.q.Get() }

// Done marks item as processed; if it was added again meanwhile, it is queued
// again now.
func (q *Queue[T]) Done(item T) { q.q.Done(item) }

// Len returns the number of items ready for Get, for information only: it can
// change before the caller acts on it, so never gate Get on it.
func (q *Queue[T]) Len() int { return q.q.Len() }

// ShutDown makes the queue ignore new items; Get keeps returning the items
// already queued, then returns shutdown=true. Items waiting in AddAfter are
// discarded. It does not wait for items being processed (see [Queue.Drain]),
// and, as client-go's plain queue documents, it releases a
// [Queue.ShutDownWithDrain] that is still waiting. It may be called more than
// once.
func (q *Queue[T]) ShutDown() {
	q.q.ShutDown()
	// The delaying layer's ShutDown runs once; the plain layer's releases a
	// waiting ShutDownWithDrain every time.
	q.base.ShutDown()
}

// ShutDownWithDrain is client-go's ShutDownWithDrain: like ShutDown, but it
// blocks until every item handed out by Get is Done or until [Queue.ShutDown]
// is called. Prefer [Queue.Drain], which takes a bound.
func (q *Queue[T]) ShutDownWithDrain() {
	q.q.ShutDownWithDrain()
	// client-go's drain does not stop the delaying layer's goroutine; this does.
	q.q.ShutDown()
}

// ShuttingDown reports whether ShutDown, ShutDownWithDrain or Drain was called.
func (q *Queue[T]) ShuttingDown() bool { return q.q.ShuttingDown() }

// Drain shuts the queue down and waits until every item handed out by Get is
// Done, or until ctx is done, whichever comes first. In the second case it
// stops waiting (client-go's ShutDown releases ShutDownWithDrain) and returns
// ctx's error. No goroutine is left running either way.
func (q *Queue[T]) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.q.ShutDownWithDrain()
	}()
	select {
	case <-done:
		q.q.ShutDown()
		return nil
	case <-ctx.Done():
		// ShutDown releases a waiting ShutDownWithDrain; repeat it in case the
		// goroutine above had not reached ShutDownWithDrain yet.
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for stopped := false; !stopped; {
			q.base.ShutDown()
			select {
			case <-done:
				stopped = true
			case <-t.C:
			}
		}
		q.q.ShutDown()
		return fmt.Errorf("queue: drain stopped with items still being processed: %w", context.Cause(ctx))
	}
}
