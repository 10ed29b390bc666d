package prometheus

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"

	prom "github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

// Metrics exports informer metrics to one Prometheus registry: client-go's
// (as the cache.InformerMetricsProvider that informer.WithMetrics takes) and
// the sync state of the informers given to [Metrics.Watch]. It is safe for
// concurrent use.
type Metrics struct {
	queued, resourceVersion *prom.GaugeVec
	latency                 *prom.HistogramVec

	synced, objects *prom.Desc
	mu              sync.Mutex
	watched         []watched
}

type watched struct {
	name string
	src  Source
}

var (
	_ cache.InformerMetricsProvider = (*Metrics)(nil)
	_ prom.Collector                = (*syncCollector)(nil)
)

// Labels of client-go's informer metrics, as k8s.io/component-base names them.
var clientGoLabels = []string{"name", "group", "version", "resource"}

// New creates the metrics and registers them with reg. Nothing is
// registered anywhere else, and nothing process-wide is set.
func New(reg prom.Registerer) (*Metrics, error) {
	if reg == nil || (reflect.ValueOf(reg).Kind() == reflect.Pointer && reflect.ValueOf(reg).IsNil()) {
		return nil, errors.New("informer/prometheus: New(nil): pass a registry, e.g. prometheus.NewRegistry()")
	}
	const sub = "informer"
	m := &Metrics{
		queued: prom.NewGaugeVec(prom.GaugeOpts{Subsystem: sub, Name: "queued_items",
			Help: "Number of items currently queued in the FIFO."}, clientGoLabels),
		latency: prom.NewHistogramVec(prom.HistogramOpts{Subsystem: sub, Name: "processing_latency_seconds",
			Help:    "Time taken to process events after popping from the queue.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}}, clientGoLabels),
		resourceVersion: prom.NewGaugeVec(prom.GaugeOpts{Subsystem: sub, Name: "store_resource_version",
			Help: "The 15 least significant digits of the resource version of the store."}, clientGoLabels),
		synced: prom.NewDesc("informer_synced",
			"1 once the informer has listed its objects (its cache is synced), else 0.",
			[]string{"name", "group", "version", "resource", "namespace"}, nil),
		objects: prom.NewDesc("informer_store_objects",
			"Number of objects in the informer's cache.",
			[]string{"name", "group", "version", "resource", "namespace"}, nil),
	}
	done := []prom.Collector{}
	for _, c := range []prom.Collector{m.queued, m.latency, m.resourceVersion, &syncCollector{m}} {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			return nil, fmt.Errorf("informer/prometheus: New: %w (New was already called with this registry? share one Metrics)", err)
		}
		done = append(done, c)
	}
	return m, nil
}

// NewQueuedItemMetric implements cache.InformerMetricsProvider:
// informer_queued_items.
func (m *Metrics) NewQueuedItemMetric(id cache.InformerNameAndResource) cache.GaugeMetric {
	return reservedGauge{id, m.queued.WithLabelValues(labelValues(id)...)}
}

// NewProcessingLatencyMetric implements cache.InformerMetricsProvider:
// informer_processing_latency_seconds.
func (m *Metrics) NewProcessingLatencyMetric(id cache.InformerNameAndResource) cache.HistogramMetric {
	return reservedHistogram{id, m.latency.WithLabelValues(labelValues(id)...)}
}

// NewStoreResourceVersionMetric implements cache.InformerMetricsProvider:
// informer_store_resource_version.
func (m *Metrics) NewStoreResourceVersionMetric(id cache.InformerNameAndResource) cache.GaugeMetric {
	return reservedGauge{id, m.resourceVersion.WithLabelValues(labelValues(id)...)}
}

func labelValues(id cache.InformerNameAndResource) []string {
	gvr := id.GroupVersionResource()
	return []string{id.Name(), gvr.Group, gvr.Version, gvr.Resource}
}

// reservedGauge updates its gauge only while client-go's informer name is
// reserved (until the factory is shut down), as k8s.io/component-base does.
type reservedGauge struct {
	id cache.InformerNameAndResource
	g  prom.Gauge
}

func (r reservedGauge) Set(v float64) {
	if r.id.Reserved() {
		r.g.Set(v)
	}
}

type reservedHistogram struct {
	id cache.InformerNameAndResource
	h  prom.Observer
}

func (r reservedHistogram) Observe(v float64) {
	if r.id.Reserved() {
		r.h.Observe(v)
	}
}

// Source is an informer whose sync state [Metrics.Watch] reports: every
// *informer.Informer[T] is one.
type Source interface {
	// Resource is the informer's resource.
	Resource() schema.GroupVersionResource
	// Informers are client-go's informers, keyed by namespace ("" for all
	// namespaces or a cluster-scoped resource).
	Informers() map[string]cache.SharedIndexInformer
}

// Watch adds inf to informer_synced and informer_store_objects, with name
// as their "name" label (use the factory's informer.WithMetrics name) and
// one series per namespace the informer watches ("" for all namespaces).
// Both are read when the registry is scraped: whether the namespace's
// informer has synced (client-go's HasSynced) and how many objects its cache
// holds. An informer stays reported for the life of m; after its factory is
// shut down it reports its last state.
func (m *Metrics) Watch(name string, inf Source) error {
	if name == "" {
		return errors.New(`informer/prometheus: Watch("", inf): empty name; pass the factory's name (its informer.WithMetrics name), e.g. "mirrors"`)
	}
	if inf == nil || (reflect.ValueOf(inf).Kind() == reflect.Pointer && reflect.ValueOf(inf).IsNil()) {
		return fmt.Errorf("informer/prometheus: Watch(%q, nil): pass an informer from informer.For, ForResource or ForMetadata", name)
	}
	gvr := inf.Resource()
	m.mu.Lock()
	defer m.mu.Unlock()
	if slices.ContainsFunc(m.watched, func(w watched) bool { return w.name == name && w.src.Resource() == gvr }) {
		return fmt.Errorf("informer/prometheus: Watch(%q, %s): already watched under this name; give each factory its own name", name, gvr)
	}
	m.watched = append(m.watched, watched{name, inf})
	return nil
}

// syncCollector reads the watched informers' state at scrape time.
type syncCollector struct{ m *Metrics }

func (c *syncCollector) Describe(ch chan<- *prom.Desc) {
	ch <- c.m.synced
	ch <- c.m.objects
}

func (c *syncCollector) Collect(ch chan<- prom.Metric) {
	c.m.mu.Lock()
	ws := slices.Clone(c.m.watched)
	c.m.mu.Unlock()
	for _, w := range ws {
		gvr := w.src.Resource()
		for ns, inf := range w.src.Informers() {
			labels := []string{w.name, gvr.Group, gvr.Version, gvr.Resource, ns}
			synced := 0.0
			if inf.HasSynced() {
				synced = 1
			}
			ch <- prom.MustNewConstMetric(c.m.synced, prom.GaugeValue, synced, labels...)
			ch <- prom.MustNewConstMetric(c.m.objects, prom.GaugeValue, float64(len(inf.GetStore().ListKeys())), labels...)
		}
	}
}
