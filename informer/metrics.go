package informer

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// WithMetrics makes the factory's informers report client-go's informer
// metrics to p (for Prometheus: informer/prometheus's Metrics), with name as
// their "name" label: the items queued between the watch and the handlers,
// the time handlers take per event, and the cache's resourceVersion. Default:
// none.
//
// client-go identifies informers for metrics by a name unique in the process
// (cache.NewInformerName): [New] fails if another live factory uses name.
// A factory with [WithNamespaces] runs one informer per namespace and names
// them "<name>/<namespace>" (cluster-scoped resources keep name). One series
// per resource and name: if a factory caches a resource twice (typed and
// metadata-only, say), the first informer requested reports. The names are
// released by [Factory.Shutdown].
//
// p is per factory, not client-go's process-wide provider
// (cache.SetInformerMetricsProvider), which this package never sets.
func WithMetrics(name string, p cache.InformerMetricsProvider) Option {
	return optionFunc(func(o *options) {
		o.metricsName, o.metricsProvider, o.metricsSet = name, p, true
	})
}

func (o *options) validateMetrics() []error {
	if !o.metricsSet {
		return nil
	}
	var errs []error
	if o.metricsName == "" {
		errs = append(errs, errors.New(`WithMetrics("", p): empty name; name the factory, e.g. "mirrors" (it is the metrics' "name" label)`))
	}
	if p := o.metricsProvider; p == nil || (reflect.ValueOf(p).Kind() == reflect.Pointer && reflect.ValueOf(p).IsNil()) {
		errs = append(errs, fmt.Errorf("WithMetrics(%q, nil): the provider is nil; pass one, e.g. informer/prometheus's New(registry)", o.metricsName))
	}
	return errs
}

// metricNames reserves client-go's informer names for the factory: one for
// informers of all namespaces (and cluster-scoped ones), one per namespace of
// WithNamespaces.
type metricNames struct {
	byNamespace map[string]*cache.InformerName
	used        map[string]map[schema.GroupVersionResource]bool
}

func newMetricNames(o *options) (*metricNames, error) {
	if !o.metricsSet {
		return nil, nil
	}
	m := &metricNames{byNamespace: map[string]*cache.InformerName{}, used: map[string]map[schema.GroupVersionResource]bool{}}
	want := map[string]string{"": o.metricsName}
	for _, ns := range o.namespaces {
		want[ns] = o.metricsName + "/" + ns
	}
	for ns, name := range want {
		n, err := cache.NewInformerName(name)
		if err != nil {
			m.release()
			return nil, fmt.Errorf("informer: WithMetrics(%q): %w: client-go's informer names are unique in a process; give each factory its own name, or shut down the factory that has it", o.metricsName, err)
		}
		m.byNamespace[ns] = n
	}
	return m, nil
}

// identifier returns the metrics identity of the informer of gvr in ns, or
// the zero identity (no metrics) without WithMetrics or for a resource that
// already reports under that name.
func (m *metricNames) identifier(gvr schema.GroupVersionResource, ns string) cache.InformerNameAndResource {
	if m == nil {
		return cache.InformerNameAndResource{}
	}
	n, ok := m.byNamespace[ns]
	if !ok || m.used[ns][gvr] {
		return cache.InformerNameAndResource{}
	}
	if m.used[ns] == nil {
		m.used[ns] = map[schema.GroupVersionResource]bool{}
	}
	m.used[ns][gvr] = true
	return n.WithResource(gvr)
}

func (m *metricNames) release() {
	if m == nil {
		return
	}
	for _, n := range m.byNamespace {
		n.Release()
	}
}

// dynamicListWatch lists and watches gvr in ns as unstructured objects, as
// client-go's dynamicinformer does.
func (f *Factory) dynamicListWatch(gvr schema.GroupVersionResource, ns string) cache.ListerWatcher {
	ri := f.dyn.Resource(gvr).Namespace(ns)
	return cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) {
			f.tweak(&lo)
			return ri.List(ctx, lo)
		},
		WatchFuncWithContext: func(ctx context.Context, lo metav1.ListOptions) (watch.Interface, error) {
			f.tweak(&lo)
			return ri.Watch(ctx, lo)
		},
	}, f.dyn)
}

// metadataListWatch lists and watches gvr in ns as PartialObjectMetadata, as
// client-go's metadatainformer does.
func (f *Factory) metadataListWatch(gvr schema.GroupVersionResource, ns string) cache.ListerWatcher {
	ri := f.meta.Resource(gvr).Namespace(ns)
	return cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) {
			f.tweak(&lo)
			return ri.List(ctx, lo)
		},
		WatchFuncWithContext: func(ctx context.Context, lo metav1.ListOptions) (watch.Interface, error) {
			f.tweak(&lo)
			return ri.Watch(ctx, lo)
		},
	}, f.meta)
}
