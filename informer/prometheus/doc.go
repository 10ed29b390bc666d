// Package prometheus exports informer metrics to a Prometheus registry you
// choose: what client-go v0.37 measures inside its informers, plus the sync
// state of the caches. Nothing is registered on import and nothing
// process-wide is set.
//
//	reg := prometheus.NewRegistry()
//	m, err := informerprom.New(reg)
//	f, err := informer.New(c, informer.WithMetrics("mirrors", m)) // client-go's series
//	cms, err := informer.For[*corev1.ConfigMap](ctx, f)
//	err = m.Watch("mirrors", cms)                                 // sync state
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// # What client-go v0.37 exposes
//
// client-go's tools/cache has two metrics hooks:
//
//   - cache.InformerMetricsProvider: the items queued between an informer's
//     watch and its handlers, the time the handlers take per event, and the
//     cache's resourceVersion. An informer reports only if it was built
//     with an identity (cache.NewInformerName, a name unique in the
//     process), to a provider given per informer or, for informers given
//     none, to a process-wide one (cache.SetInformerMetricsProvider, first
//     call wins). *Metrics is such a provider; informer.WithMetrics hands
//     it to one factory's informers with a name of their own, so this
//     package never uses the process-wide hook and two registries never
//     share series.
//   - cache.SetReflectorMetricsProvider (lists, watches, items per list...):
//     process-wide, and dead: nothing in client-go v0.37 calls the provider
//     (Kubernetes removed reflector metrics for their unbounded cardinality).
//     This package does not offer it.
//
// client-go has no metric of whether a cache is synced or how big it is;
// [Metrics.Watch] adds both, read at scrape time.
//
// # Metrics
//
// client-go's, with k8s.io/component-base's names and labels {name, group,
// version, resource} (name is the informer.WithMetrics name, or
// "<name>/<namespace>" for a factory with WithNamespaces), so Kubernetes
// dashboards work:
//
//   - informer_queued_items: items waiting in the informer's FIFO
//   - informer_processing_latency_seconds: histogram of the time handlers
//     took per popped event
//   - informer_store_resource_version: the 15 least significant digits of
//     the cache's resourceVersion
//
// Sync state, labels {name, group, version, resource, namespace} (namespace
// "" when one informer watches all namespaces or the resource is
// cluster-scoped):
//
//   - informer_synced: 1 once the informer has listed its objects, else 0
//   - informer_store_objects: objects in the informer's cache
//
// # Errors
//
// [New] fails for a nil registry or one that already has these metrics
// (share one Metrics instead). [Metrics.Watch] fails for an empty name, a
// nil informer, or a resource already watched under that name.
// informer.New fails if WithMetrics's name is used by another live factory
// in the process.
package prometheus
