package prometheus

import (
	"fmt"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubekit/kubekit/queue"
)

// Provider is a workqueue.MetricsProvider backed by Prometheus metric
// vectors. It is safe for concurrent use.
type Provider struct {
	depth, unfinished, longest *prom.GaugeVec
	adds, retries              *prom.CounterVec
	latency, workDuration      *prom.HistogramVec

	reconciles                              *prom.CounterVec
	reconcileErrors, terminalErrors, panics *prom.CounterVec
	reconcileTime                           *prom.HistogramVec
	activeWorkers                           *prom.GaugeVec
}

var (
	_ workqueue.MetricsProvider = (*Provider)(nil)
	_ queue.RunMetrics          = (*Provider)(nil)
)

// New creates the workqueue metric vectors and registers them with reg.
func New(reg prom.Registerer) (*Provider, error) {
	if reg == nil {
		return nil, fmt.Errorf("queue/prometheus.New: nil registerer (use prometheus.NewRegistry() or prometheus.DefaultRegisterer)")
	}
	const ns = "workqueue"
	labels := []string{"name"}
	buckets := prom.ExponentialBuckets(10e-9, 10, 12) // 10ns .. 1000s, as Kubernetes does
	p := &Provider{
		depth: prom.NewGaugeVec(prom.GaugeOpts{Namespace: ns, Name: "depth",
			Help: "Current depth of workqueue."}, labels),
		adds: prom.NewCounterVec(prom.CounterOpts{Namespace: ns, Name: "adds_total",
			Help: "Total number of adds handled by workqueue."}, labels),
		latency: prom.NewHistogramVec(prom.HistogramOpts{Namespace: ns, Name: "queue_duration_seconds",
			Help: "How long in seconds an item stays in workqueue before being requested.", Buckets: buckets}, labels),
		workDuration: prom.NewHistogramVec(prom.HistogramOpts{Namespace: ns, Name: "work_duration_seconds",
			Help: "How long in seconds processing an item from workqueue takes.", Buckets: buckets}, labels),
		unfinished: prom.NewGaugeVec(prom.GaugeOpts{Namespace: ns, Name: "unfinished_work_seconds",
			Help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. " +
				"Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases."}, labels),
		longest: prom.NewGaugeVec(prom.GaugeOpts{Namespace: ns, Name: "longest_running_processor_seconds",
			Help: "How many seconds has the longest running processor for workqueue been running."}, labels),
		retries: prom.NewCounterVec(prom.CounterOpts{Namespace: ns, Name: "retries_total",
			Help: "Total number of retries handled by workqueue."}, labels),
	}
	// Reconcile metrics, with controller-runtime's names and labels.
	const cr = "controller_runtime"
	ctl := []string{"controller"}
	p.reconciles = prom.NewCounterVec(prom.CounterOpts{Namespace: cr, Name: "reconcile_total",
		Help: "Total number of reconciliations per controller."}, []string{"controller", "result"})
	p.reconcileErrors = prom.NewCounterVec(prom.CounterOpts{Namespace: cr, Name: "reconcile_errors_total",
		Help: "Total number of reconciliation errors per controller."}, ctl)
	p.terminalErrors = prom.NewCounterVec(prom.CounterOpts{Namespace: cr, Name: "terminal_reconcile_errors_total",
		Help: "Total number of terminal reconciliation errors per controller."}, ctl)
	p.panics = prom.NewCounterVec(prom.CounterOpts{Namespace: cr, Name: "reconcile_panics_total",
		Help: "Total number of reconciliation panics per controller."}, ctl)
	p.reconcileTime = prom.NewHistogramVec(prom.HistogramOpts{Namespace: cr, Name: "reconcile_time_seconds",
		Help: "Length of time per reconciliation per controller.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
			1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60}}, ctl)
	p.activeWorkers = prom.NewGaugeVec(prom.GaugeOpts{Namespace: cr, Name: "active_workers",
		Help: "Number of currently used workers per controller."}, ctl)
	for _, c := range []prom.Collector{p.depth, p.adds, p.latency, p.workDuration, p.unfinished, p.longest, p.retries,
		p.reconciles, p.reconcileErrors, p.terminalErrors, p.panics, p.reconcileTime, p.activeWorkers} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("queue/prometheus.New: %w (the registry already has workqueue metrics: share one Provider)", err)
		}
	}
	return p, nil
}

// NewDepthMetric implements workqueue.MetricsProvider.
func (p *Provider) NewDepthMetric(name string) workqueue.GaugeMetric {
	return p.depth.WithLabelValues(name)
}

// NewAddsMetric implements workqueue.MetricsProvider.
func (p *Provider) NewAddsMetric(name string) workqueue.CounterMetric {
	return p.adds.WithLabelValues(name)
}

// NewLatencyMetric implements workqueue.MetricsProvider.
func (p *Provider) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return p.latency.WithLabelValues(name)
}

// NewWorkDurationMetric implements workqueue.MetricsProvider.
func (p *Provider) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return p.workDuration.WithLabelValues(name)
}

// NewUnfinishedWorkSecondsMetric implements workqueue.MetricsProvider.
func (p *Provider) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.unfinished.WithLabelValues(name)
}

// NewLongestRunningProcessorSecondsMetric implements workqueue.MetricsProvider.
func (p *Provider) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.longest.WithLabelValues(name)
}

// NewRetriesMetric implements workqueue.MetricsProvider.
func (p *Provider) NewRetriesMetric(name string) workqueue.CounterMetric {
	return p.retries.WithLabelValues(name)
}

// ReconcileStarted implements queue.RunMetrics.
func (p *Provider) ReconcileStarted(name string) { p.activeWorkers.WithLabelValues(name).Inc() }

// ReconcileDone implements queue.RunMetrics: controller_runtime_reconcile_total
// by result (success, requeue_after, error; terminal errors and panics count
// as error and in their own counters), the error counters and
// controller_runtime_reconcile_time_seconds.
func (p *Provider) ReconcileDone(name string, o queue.Outcome, took time.Duration) {
	p.activeWorkers.WithLabelValues(name).Dec()
	p.reconcileTime.WithLabelValues(name).Observe(took.Seconds())
	result := string(o)
	switch o {
	case queue.OutcomeTerminalError:
		p.terminalErrors.WithLabelValues(name).Inc()
		result = string(queue.OutcomeError)
	case queue.OutcomePanic:
		p.panics.WithLabelValues(name).Inc()
		result = string(queue.OutcomeError)
	}
	if result == string(queue.OutcomeError) {
		p.reconcileErrors.WithLabelValues(name).Inc()
	}
	p.reconciles.WithLabelValues(name, result).Inc()
}
