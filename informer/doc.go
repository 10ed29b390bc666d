// Package informer gives typed, shared informers with listers, indexes and
// event handlers, built on client-go's cache.SharedIndexInformer, for
// built-in types and (dynamically) for any resource including CRDs.
//
// # Overview
//
// Logging: the factory logs through the client's logger (client.WithLogger,
// default klog.Background()), and hands it to client-go's informers through
// Start's ctx unless ctx already carries a logger.
//
// A [Factory] is built from a kubekit [client.Client]. Request informers
// with [For] (typed, for any type in client-go's scheme) or [ForResource]
// (*unstructured.Unstructured, for any served resource), add handlers and
// indexes, then start the factory and wait for the caches:
//
//	f, err := informer.New(c, informer.WithNamespaces("team-a", "team-b"), informer.WithDropManagedFields(true))
//	pods, err := informer.For[*corev1.Pod](ctx, f)
//	_ = pods.AddIndex(informer.PodsByNodeName())
//	reg, err := pods.AddHandler(informer.Handler[*corev1.Pod]{
//		OnAdd:    func(p *corev1.Pod, initial bool) { ... },
//		OnUpdate: func(old, cur *corev1.Pod) { ... },
//		OnDelete: func(p *corev1.Pod) { ... }, // never a tombstone
//	})
//	f.Start(ctx)
//	defer f.Shutdown()
//	if err := f.WaitForSync(ctx); err != nil { ... } // names what did not sync
//	p, err := pods.Lister().Get("team-a", "web-0")   // apierrors.IsNotFound when absent
//	onNode, err := pods.Lister().ByIndex(informer.IndexNodeName, "node-1")
//
// Listers return the cached objects themselves: never modify them, copy
// first (DeepCopy).
//
// # Options
//
//   - [WithNamespaces]: omitted means all namespaces (an empty call is an
//     error). Several namespaces
//     mean one informer (one list+watch) per namespace per resource,
//     behind one [Lister] that merges them; RBAC on those namespaces is
//     enough. Cluster-scoped resources always use one informer.
//   - [WithLabelSelector], [WithFieldSelector]: server-side filters for
//     every informer of the factory; parsed by [New].
//   - [WithResync], [WithResyncFor]: resync period, default and per
//     resource (schema.GroupResource).
//   - [WithTransform], [WithDropManagedFields]: change objects before they
//     are cached. Dropping managedFields took a Pod with three field
//     managers from 10.1 KB to 7.1 KB of heap in the cache (29% less,
//     BenchmarkManagedFieldsMemory); the saving grows with the number of
//     managers and the size of what they manage.
//   - [WithMetrics]: client-go's informer metrics (queued items,
//     processing latency, store resourceVersion) to a provider of this
//     factory's own, such as informer/prometheus's, under a name unique in
//     the process.
//
// The factory's clients reuse the client's connection pool and settings
// but not client.WithTimeout: a whole-request timeout on rest.Config would
// cut every watch stream, so the informers use c.Config() with Timeout 0.
//
// # Indexes
//
// Every informer indexes by namespace ([IndexNamespace]). Ready-made
// indexes: [ByLabel] (name [LabelIndexName](key)), [ByOwnerUID]
// ([IndexOwnerUID]), [PodsByNodeName] ([IndexNodeName]); typed custom ones
// with [IndexFunc]. Indexes can be added before or after Start.
//
// # Handlers
//
// [Handler] has typed OnAdd/OnUpdate/OnDelete callbacks. For one object,
// calls arrive in the order the changes were seen; with several namespaces
// calls for different namespaces may interleave. Each registration runs on
// its own goroutine. OnDelete always gets the object: client-go's
// cache.DeletedFinalStateUnknown tombstones (a deletion the watch missed)
// are unwrapped ([Unwrap]) and then carry the last known state. Remove a
// handler with [Registration.Remove].
//
// # Lifecycle
//
// [Factory.Start] is non-blocking: it runs the informers in goroutines and
// returns. Informers requested after Start start at once, so For and
// ForResource may be called at any time before [Factory.Shutdown].
// [Factory.WaitForSync] (and [Informer.WaitForSync]) block until the caches
// hold the initial list, or return an error naming each resource and
// namespace still unsynced when ctx ends. A list the API server refuses in a
// way retrying cannot fix (400 for an unsupported field selector, 403
// Forbidden: see [Permanent] for the full list) ends the wait at once with
// that error; transient failures (connection errors, 5xx, 429, 401, 404)
// keep it waiting while client-go retries, bounded by ctx. [Factory.Shutdown] cancels the
// informers and waits for every goroutine they started, event handlers
// included; cancelling Start's ctx also stops them, but only Shutdown
// waits.
//
// # Errors
//
// Bad input fails early with a message naming the fix: an unparsable
// selector, an invalid namespace or an empty WithNamespaces() from New, a
// type outside client-go's scheme from For, an unreachable API server from
// For and ForResource (the connection error, bounded by their ctx, never
// "not served"), an index name given twice to AddIndex, a resource the server does not serve from ForResource, an
// index that does not exist from ByIndex (wrapping [ErrUnknownIndex]), a
// namespace the factory does not watch from Get (wrapping
// [ErrNotWatched]). Get on a missing object returns an apierrors NotFound
// error with the right GroupResource.
package informer
