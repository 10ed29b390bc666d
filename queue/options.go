package queue

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Defaults applied by [New]. They are client-go's
// DefaultTypedControllerRateLimiter (per-item exponential backoff from 5ms to
// 1000s, combined with an overall token bucket of 10 qps and 100 burst), so a
// kubekit queue retries exactly like the controllers in kube-controller-manager
// and controller-runtime. The bucket only paces retries (AddRateLimited), never
// plain Add.
const (
	DefaultBackoffBase = 5 * time.Millisecond
	DefaultBackoffMax  = 1000 * time.Second
	DefaultBucketQPS   = 10
	DefaultBucketBurst = 100
	// DefaultMaxRetries is negative: retry forever. A dropped item is stale
	// until the next event about it (forever, without a resync), while a
	// retried one is reconciled as soon as the cause is gone; the per-item
	// backoff caps the cost at one try per 1000s, and every failure is
	// logged. controller-runtime made the same choice. Return a
	// [TerminalError] for failures retrying cannot fix.
	DefaultMaxRetries   = -1
	DefaultDrainTimeout = 30 * time.Second
)

// Option configures [New]. Options may be given in any order; conflicting
// options (for example [WithRateLimiter] together with [WithBackoff]) are an
// error returned by New.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	name         string
	provider     workqueue.MetricsProvider
	clock        clock.WithTicker
	backoffBase  time.Duration
	backoffMax   time.Duration
	backoffSet   bool
	qps          float64
	burst        int
	bucketSet    bool
	rateLimiter  any // workqueue.TypedRateLimiter[T], checked in New
	maxRetries   int
	onDrop       any // func(T, error), checked in New
	logger       logr.Logger
	loggerSet    bool
	drainTimeout time.Duration
	timeout      time.Duration
	errs         []error
}

func defaultOptions() options {
	return options{
		backoffBase:  DefaultBackoffBase,
		backoffMax:   DefaultBackoffMax,
		qps:          DefaultBucketQPS,
		burst:        DefaultBucketBurst,
		maxRetries:   DefaultMaxRetries,
		drainTimeout: DefaultDrainTimeout,
	}
}

// WithName names the queue. client-go records metrics only for named queues;
// the name is the "name" label of every workqueue metric. Default: unnamed (no
// metrics).
func WithName(name string) Option {
	return optionFunc(func(o *options) { o.name = name })
}

// WithMetricsProvider sets the metrics provider of this queue only (client-go's
// per-queue MetricsProvider field), instead of the process-wide provider set
// with workqueue.SetProvider. It requires [WithName]. Default: client-go's
// global provider, which records nothing unless the program called
// workqueue.SetProvider (k8s.io/component-base does, for example).
func WithMetricsProvider(p workqueue.MetricsProvider) Option {
	return optionFunc(func(o *options) {
		o.provider = p
		if p == nil {
			o.errs = append(o.errs, errors.New("queue: WithMetricsProvider(nil): the provider is nil; omit the option to use client-go's global provider"))
		}
	})
}

// WithBackoff sets the per-item exponential backoff used by AddRateLimited and
// by [Queue.Run] after a failed reconcile: the n-th retry of an item waits
// base*2^(n-1), at most max. [Queue.Forget] resets an item's count. Default:
// [DefaultBackoffBase] and [DefaultBackoffMax]. Conflicts with
// [WithRateLimiter].
func WithBackoff(base, max time.Duration) Option {
	return optionFunc(func(o *options) {
		o.backoffBase, o.backoffMax, o.backoffSet = base, max, true
	})
}

// WithBucket sets the overall token bucket that paces all rate-limited adds
// together: qps tokens per second, at most burst at once. WithBucket(0, 0)
// disables the bucket, leaving only the per-item backoff. Default:
// [DefaultBucketQPS] and [DefaultBucketBurst]. Conflicts with
// [WithRateLimiter].
func WithBucket(qps float64, burst int) Option {
	return optionFunc(func(o *options) {
		o.qps, o.burst, o.bucketSet = qps, burst, true
	})
}

// WithRateLimiter replaces the default backoff and bucket with any client-go
// typed rate limiter, for example workqueue.NewTypedItemFastSlowRateLimiter.
// Its item type must be the queue's item type. Conflicts with [WithBackoff]
// and [WithBucket].
func WithRateLimiter[T comparable](rl workqueue.TypedRateLimiter[T]) Option {
	return optionFunc(func(o *options) {
		if rl == nil {
			o.errs = append(o.errs, errors.New("queue: WithRateLimiter(nil): the rate limiter is nil; omit the option for the default backoff and bucket"))
			return
		}
		o.rateLimiter = rl
	})
}

// WithMaxRetries sets how many times [Queue.Run] retries an item whose
// reconcile keeps failing before it drops the item (logging it and calling the
// [WithOnDrop] callback). 0 drops an item at its first failure; a negative
// value retries forever. Default: [DefaultMaxRetries] (forever; see its doc
// for why).
func WithMaxRetries(n int) Option {
	return optionFunc(func(o *options) { o.maxRetries = n })
}

// WithOnDrop sets a callback that [Queue.Run] calls, from the worker
// goroutine, with each item it drops (after [WithMaxRetries] failures, or at
// once for a [TerminalError]) and the last error. Its item type must be the queue's item type. Default: none (the
// drop is only logged).
func WithOnDrop[T comparable](fn func(item T, err error)) Option {
	return optionFunc(func(o *options) {
		if fn == nil {
			o.errs = append(o.errs, errors.New("queue: WithOnDrop(nil): the callback is nil; omit the option to only log drops"))
			return
		}
		o.onDrop = fn
	})
}

// WithLogger sets the logger [Queue.Run] uses for failed, panicking and
// dropped items. Default: klog.FromContext of the context given to Run, which
// is klog.Background() unless the context carries a logger (kubekit's rule in
// every package, so logging.RouteKlog captures it).
func WithLogger(l logr.Logger) Option {
	return optionFunc(func(o *options) { o.logger, o.loggerSet = l, true })
}

// WithDrainTimeout bounds how long [Queue.Run] waits for in-flight reconciles
// after its context is cancelled. When it passes, the reconciles' context is
// cancelled and Run returns [ErrDrainTimeout]. Must be > 0. Default:
// [DefaultDrainTimeout].
func WithDrainTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.drainTimeout = d })
}

// WithReconcileTimeout bounds each reconcile of [Queue.Run]: its context is
// cancelled after d, and the reconcile's error (usually
// context.DeadlineExceeded) is retried like any other. 0 means no timeout.
// Default: 0, as controller-runtime (a hung reconcile only holds its worker
// and its item).
func WithReconcileTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.timeout = d })
}

// WithClock sets the clock for delays, backoff and the token bucket, so tests
// can use k8s.io/utils/clock/testing's FakeClock. Default: the real clock.
func WithClock(c clock.WithTicker) Option {
	return optionFunc(func(o *options) {
		o.clock = c
		if c == nil {
			o.errs = append(o.errs, errors.New("queue: WithClock(nil): the clock is nil; omit the option for the real clock"))
		}
	})
}

func (o *options) validate() error {
	errs := o.errs
	if o.provider != nil && o.name == "" {
		errs = append(errs, errors.New("queue: WithMetricsProvider: the queue has no name, and client-go records no metrics for unnamed queues; add WithName"))
	}
	if o.rateLimiter != nil && (o.backoffSet || o.bucketSet) {
		errs = append(errs, errors.New("queue: WithRateLimiter: cannot be combined with WithBackoff or WithBucket, the custom limiter replaces both; combine them yourself with workqueue.NewTypedMaxOfRateLimiter"))
	}
	if o.backoffBase <= 0 || o.backoffMax < o.backoffBase {
		errs = append(errs, fmt.Errorf("queue: WithBackoff(%v, %v): need 0 < base <= max; e.g. WithBackoff(5*time.Millisecond, 1000*time.Second)", o.backoffBase, o.backoffMax))
	}
	if !(o.qps == 0 && o.burst == 0) && (o.qps <= 0 || o.burst <= 0) {
		errs = append(errs, fmt.Errorf("queue: WithBucket(%v, %d): need qps > 0 and burst > 0; pass both, or both 0 to disable the bucket", o.qps, o.burst))
	}
	if o.timeout < 0 {
		errs = append(errs, fmt.Errorf("queue: WithReconcileTimeout(%v): must be >= 0; 0 for no timeout", o.timeout))
	}
	if o.drainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("queue: WithDrainTimeout(%v): must be > 0; omit it for the default", o.drainTimeout))
	}
	return errors.Join(errs...)
}
