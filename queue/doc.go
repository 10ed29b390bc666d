// Package queue provides typed work queues and a worker loop that gets
// retries, shutdown and panics right.
//
// # Overview
//
// A [Queue] wraps client-go's workqueue (k8s.io/client-go/util/workqueue):
// items are de-duplicated while they wait, an item is never processed by two
// workers at once, and an item added while it is being processed is queued
// again when it is Done. kubekit adds type parameters, options instead of
// client-go's New/NewTyped/NewTypedWithConfig/NewNamed... constructors, and
// [Queue.Run], which replaces the worker loop every controller writes by hand:
//
//	q, err := queue.New[string](queue.WithName("configmaps"))
//	if err != nil { ... }
//	// an informer's event handlers call q.Add(key)
//	err = q.Run(ctx, 2, func(ctx context.Context, key string) (queue.Result, error) {
//		return queue.Result{}, sync(ctx, key) // an error retries with backoff
//	})
//
// client-go has three queue kinds (plain, delaying, rate-limited), each
// wrapping the one before. kubekit always builds all three: a plain queue is
// one you only Add to, a delaying queue one you also AddAfter to, a
// rate-limited one you AddRateLimited to. The only cost is the delaying
// layer's timer goroutine, which ShutDown stops.
//
// # Options
//
// Rate-limited adds wait for the longer of a per-item exponential backoff
// ([WithBackoff], default 5ms doubling up to 1000s) and an overall token
// bucket ([WithBucket], default 10 qps, burst 100): exactly client-go's
// DefaultTypedControllerRateLimiter, the policy of kube-controller-manager
// and controller-runtime. [WithRateLimiter] takes any client-go typed rate
// limiter instead. [WithMaxRetries] (default: retry forever, as
// controller-runtime; [DefaultMaxRetries] says why), [WithOnDrop],
// [WithLogger], [WithReconcileTimeout] (default none) and [WithDrainTimeout]
// (default 30s) configure Run. A reconcile returns [TerminalError](err) for
// a failure retrying cannot fix: the item is dropped at once. [WithClock] makes delays, backoff and the
// bucket follow a fake clock in tests.
//
// Metrics go through client-go's MetricsProvider hook and need a name
// ([WithName]). [WithMetricsProvider] sets the provider for this queue only;
// without it client-go's process-wide provider (workqueue.SetProvider,
// global state kubekit never touches) is used, which records nothing unless
// the program set one. Package [github.com/kubekit/kubekit/queue/prometheus]
// provides a Prometheus provider with the metric names Kubernetes uses.
//
// # Lifecycle
//
// New starts one goroutine; ShutDown, [Queue.Drain] or the end of Run stops
// it. Run blocks until its context is cancelled (or the queue is shut down).
// On cancellation it stops taking items at once, lets the reconciles in
// flight finish (their context stays valid) for at most the drain timeout,
// then cancels their context and returns. Run never gates Get on Len: idle
// workers block in Get and ShutDown wakes them.
//
// client-go's ShutDownWithDrain waits with no bound for every item handed
// out by Get to be Done; [Queue.Drain] takes a context instead.
//
// # Errors
//
// New returns one error listing every invalid option and how to fix it.
// Run returns nil after a clean stop and an error wrapping [ErrDrainTimeout]
// if reconciles outlived the drain timeout. A panic in a reconcile is
// recovered, logged with its stack and retried like an error wrapping
// [ErrPanic].
package queue
