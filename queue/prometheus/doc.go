// Package prometheus exports kubekit (and client-go) work queue metrics to
// Prometheus. It is a separate package so that the queue package does not
// depend on the Prometheus client.
//
// # Overview
//
// [New] registers the metric vectors with a registry you choose and returns
// a workqueue.MetricsProvider for [queue.WithMetricsProvider]; it never
// touches client-go's global provider (workqueue.SetProvider) or
// Prometheus's default registry unless you pass prometheus.DefaultRegisterer:
//
//	reg := prometheus.NewRegistry()
//	p, err := queueprom.New(reg)
//	q, err := queue.New[string](queue.WithName("configmaps"), queue.WithMetricsProvider(p))
//
// The metrics have the names and the "name" label that Kubernetes components
// and controller-runtime use, so existing dashboards work:
// workqueue_depth, workqueue_adds_total, workqueue_queue_duration_seconds,
// workqueue_work_duration_seconds, workqueue_unfinished_work_seconds,
// workqueue_longest_running_processor_seconds and workqueue_retries_total.
//
// The Provider also implements [queue.RunMetrics], so [queue.Queue.Run]
// reports every reconcile with controller-runtime's names, the queue's name
// as the "controller" label: controller_runtime_reconcile_total{result=
// success|requeue_after|error}, controller_runtime_reconcile_errors_total,
// controller_runtime_terminal_reconcile_errors_total,
// controller_runtime_reconcile_panics_total,
// controller_runtime_reconcile_time_seconds and
// controller_runtime_active_workers.
//
// # Lifecycle
//
// One Provider serves any number of queues; give each a distinct
// [queue.WithName]. Queues with the same name share their series.
//
// # Errors
//
// New fails if the registry already has these metrics (for example a second
// New on the same registry): share one Provider instead.
package prometheus
