package prometheus

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/kubekit/kubekit/watch"
)

// Metrics implements watch.Metrics with Prometheus metrics. It is safe for
// concurrent use.
type Metrics struct {
	events, relists, saves *prom.CounterVec
	saveDuration           *prom.HistogramVec
	age                    *ageCollector
}

var _ watch.Metrics = (*Metrics)(nil)

// New creates the metrics and registers them with reg. It fails if reg
// already has them (share one Metrics between Watchers instead).
func New(reg prom.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("watch/prometheus: New(nil): pass a registry, e.g. prometheus.NewRegistry()")
	}
	const ns, sub = "kubekit", "watch"
	m := &Metrics{
		events: prom.NewCounterVec(prom.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_total",
			Help: "Events the handler accepted, by type and whether they were synthetic (reconstructed after a gap)."},
			[]string{"resource", "type", "synthetic"}),
		relists: prom.NewCounterVec(prom.CounterOpts{Namespace: ns, Subsystem: sub, Name: "relists_total",
			Help: "Lists of the whole resource: reason start (each Run) or gap (after 410 Gone or a lost position)."},
			[]string{"resource", "reason"}),
		saves: prom.NewCounterVec(prom.CounterOpts{Namespace: ns, Subsystem: sub, Name: "checkpoint_saves_total",
			Help: "Checkpoint writes, by result (success or error)."}, []string{"resource", "result"}),
		saveDuration: prom.NewHistogramVec(prom.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "checkpoint_save_duration_seconds",
			Help: "How long checkpoint writes take.", Buckets: prom.ExponentialBuckets(0.001, 4, 8)}, []string{"resource"}),
		age: &ageCollector{last: map[string]time.Time{}, now: time.Now,
			desc: prom.NewDesc(ns+"_"+sub+"_last_event_age_seconds", "Seconds since the handler accepted the last event.", []string{"resource"}, nil)},
	}
	for _, c := range []prom.Collector{m.events, m.relists, m.saves, m.saveDuration, m.age} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("watch/prometheus: New: %w (the registry has these metrics already: share one Metrics)", err)
		}
	}
	return m, nil
}

// EventDelivered implements watch.Metrics.
func (m *Metrics) EventDelivered(resource string, t watch.EventType, synthetic bool) {
	m.events.WithLabelValues(resource, string(t), strconv.FormatBool(synthetic)).Inc()
	m.age.touch(resource)
}

// Relisted implements watch.Metrics.
func (m *Metrics) Relisted(resource, reason string) {
	m.relists.WithLabelValues(resource, reason).Inc()
}

// CheckpointSaved implements watch.Metrics.
func (m *Metrics) CheckpointSaved(resource string, took time.Duration, err error) {
	result := "success"
	if err != nil {
		result = "error"
	}
	m.saves.WithLabelValues(resource, result).Inc()
	m.saveDuration.WithLabelValues(resource).Observe(took.Seconds())
}

// ageCollector computes the age of the last event at scrape time.
type ageCollector struct {
	desc *prom.Desc
	now  func() time.Time
	mu   sync.Mutex
	last map[string]time.Time
}

func (a *ageCollector) touch(resource string) {
	t := a.now()
	a.mu.Lock()
	a.last[resource] = t
	a.mu.Unlock()
}

func (a *ageCollector) Describe(ch chan<- *prom.Desc) { ch <- a.desc }

func (a *ageCollector) Collect(ch chan<- prom.Metric) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for r, t := range a.last {
		ch <- prom.MustNewConstMetric(a.desc, prom.GaugeValue, now.Sub(t).Seconds(), r)
	}
}
