package prometheus

import (
	"fmt"

	prom "github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
)

// Provider is a workqueue.MetricsProvider backed by Prometheus metric
// vectors. It is safe for concurrent use.
type Provider struct {
	depth, unfinished, longest *prom.GaugeVec
	adds, retries              *prom.CounterVec
	latency, workDuration      *prom.HistogramVec
}

var _ workqueue.MetricsProvider = (*Provider)(nil)

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
	for _, c := range []prom.Collector{p.depth, p.adds, p.latency, p.workDuration, p.unfinished, p.longest, p.retries} {
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
