// Package kubekit is a companion to k8s.io/client-go that makes it pleasant
// and production-safe. The root package holds no code; import the packages:
//
// # client
//
// [github.com/kubekit/kubekit/client] builds clients from a kubeconfig
// ($KUBECONFIG, ~/.kube/config, a context) or in-cluster, with dial, TLS and
// request timeouts that are never "forever", QPS and Burst defaults fit for
// real work, one shared connection pool for the typed, dynamic, discovery and
// REST clients, and a RESTMapper that learns about CRDs created later.
//
// The same package streams paginated lists ([github.com/kubekit/kubekit/client.List]:
// typed iter.Seq2 over Limit/Continue pages, explicit strategies for expired
// continue tokens), writes any object (Get, Create, Update, Patch, Delete,
// and server-side Apply that reports created, configured or unchanged from
// the server's answers) and applies or deletes multi-document manifests in a
// safe order with kubectl-style results: deletes cascade like kubectl's,
// Diff, ApplyAndPrune with kubectl's ApplySets and Wait (kstatus) make the
// GitOps loop. For controllers it applies client-go's apply configurations
// (ApplyConfiguration), writes the status, scale and eviction subresources,
// deletes collections, lists metadata only, and records events
// (StartEventRecorder) from one goroutine that Shutdown flushes and joins.
//
// # watch
//
// [github.com/kubekit/kubekit/watch] is the watch client-go should have had:
// Run(ctx, handler) delivers every change at least once, in resourceVersion
// order per object. It lists and watches, reconnects with jittered backoff,
// follows bookmarks, and on 410 Gone re-lists and reports the gap as
// synthetic events, deletions included. A checkpoint in a file, a ConfigMap
// or memory lets a restarted process resume where it stopped; the ConfigMap
// checkpoint is fenced by resourceVersion and holds 100,000 objects, so two
// replicas with leader election (see leader) fail over without losing a
// change.
//
// # informer
//
// [github.com/kubekit/kubekit/informer] turns shared informers into a typed
// cache: informer.For[*corev1.Pod](ctx, f) gives typed listers (NotFound errors
// included), indexes, and handlers that get the object even on tombstones;
// several namespaces behind one lister, selectors, per-resource resync, a
// managedFields-dropping transform, and Start / WaitForSync / Shutdown that
// joins every goroutine.
//
// # queue
//
// [github.com/kubekit/kubekit/queue] gives typed work queues built with
// options on client-go's workqueue, and Run(ctx, workers, reconcile): Get and
// Done exactly once per item, retries with backoff, drop after a limit,
// recovered panics, RequeueAfter, and a bounded drain on shutdown.
//
// # leader
//
// [github.com/kubekit/kubekit/leader] runs a function only while this replica
// holds a coordination.k8s.io Lease (client-go's leader election): its
// context is cancelled as soon as leadership is lost, and a clean stop
// releases the Lease so another replica takes over within a retry period.
//
// # testenv
//
// [github.com/kubekit/kubekit/testenv] starts the real kube-apiserver and etcd
// for tests (kubekit's and yours), restarts or kills the API server on the
// same address, and compacts etcd to force 410 Gone.
//
// # logging
//
// [github.com/kubekit/kubekit/logging] gives one zap-backed logr.Logger with a
// single klog-style verbosity, json or console output and a log file, routes
// klog (and so client-go) into it with a restore function, and binds -v,
// --log-format and --log-file to a flag set you pass.
//
// # Metrics
//
// Prometheus metrics live in sub-packages, in the registry you pass, nothing
// registered on import: client/prometheus (client-go's rest_client_* metrics,
// whose hooks are process-wide: one explicit Register call), watch/prometheus
// (events, re-lists after gaps, checkpoint saves, age of the last event),
// informer/prometheus (client-go's informer metrics and sync state) and
// queue/prometheus (workqueue_* and the reconcile metrics of Queue.Run).
//
// # Type arguments
//
// Every generic function of kubekit takes the pointer type of the object, as
// client-go hands objects around: client.List[*corev1.Pod],
// client.Collect[*corev1.ConfigMap], client.ApplyConfiguration[*appsv1.Deployment],
// watch.New[*corev1.Pod], informer.For[*corev1.Pod], and
// *unstructured.Unstructured for any kind. A value type (List[corev1.Pod])
// does not compile: corev1.Pod does not satisfy the Object constraint, whose
// methods have pointer receivers. Only a pointer of the wrong kind for the
// list (List[*corev1.Pod] over ConfigMaps) is left to run time, as an error
// that names the type to use.
//
// # Rules every package follows
//
// Logging: a package logs through the logr.Logger it is given
// (client.WithLogger, queue.WithLogger; the informer and watch packages take
// the client's) and, when none is given, through klog.Background() (queue
// and client-go's informers: klog.FromContext of the ctx passed to Run or
// Start, which is klog.Background() unless ctx carries a logger). So no
// failure is invisible by default, and [github.com/kubekit/kubekit/logging]'s
// RouteKlog sends all of it to one zap logger.
//
// Lifecycle: every Run(ctx, ...) returns nil when it stops because ctx was
// cancelled, and a non-nil error for any other stop (bad arguments, a drain
// that timed out, a failure retrying cannot fix). Every call that talks to
// the network takes a ctx and honours its cancellation.
//
// Errors: bad input gets an error, never a panic or a hang, in the form
// "<package>: <function or option>: <what was wrong>; <how to fix it>", with
// all mistakes of one option list joined. API errors are wrapped with %w, so
// apierrors.IsNotFound and friends keep working.
//
// # Examples
//
// The examples directory holds one runnable program per capability; "make
// demo" runs them all against a real kube-apiserver and etcd.
package kubekit
