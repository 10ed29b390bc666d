// Package client builds client-go clients the way production code needs them:
// from a kubeconfig or in-cluster, with timeouts that are never "forever",
// realistic rate limits, one shared connection pool, cached discovery and a
// RESTMapper that learns about CRDs created later.
//
// # Overview
//
//	c, err := client.New() // $KUBECONFIG, ~/.kube/config, then in-cluster
//	if err != nil {
//		return err
//	}
//	pods, err := c.Kubernetes().CoreV1().Pods(c.Namespace()).List(ctx, metav1.ListOptions{})
//
// [Client.Kubernetes] is the typed clientset, [Client.Dynamic] the dynamic
// client, [Client.Discovery] a memory-cached discovery client,
// [Client.RESTMapper] maps kinds to resources, [Client.RESTClientFor] gives a
// RESTClient for one group version and [Client.ServerVersion] honours its
// context.
//
// # Options
//
// Source: [WithKubeconfig], [WithKubeContext], [WithInCluster],
// [WithRESTConfig]; without one, New searches $KUBECONFIG (colon-separated
// files merged like kubectl does), ~/.kube/config and the in-cluster service
// account, and its error lists what it tried.
//
// Timeouts: a new connection must be established within [WithDialTimeout]
// (default 30s) and finish its TLS handshake within [WithTLSHandshakeTimeout]
// (default 10s). [WithTimeout] bounds whole requests and is off by default:
// bound calls with a ctx deadline, or set it like kubectl's --request-timeout.
//
// Throttling: [WithQPS] (default 50) and [WithBurst] (default 100) replace
// client-go's 5/10; [WithRateLimit](false) leaves flow control to the server.
//
// Logging: [WithLogger]; without it the client logs through
// klog.Background(), kubekit's default in every package.
//
// Warnings the API server sends (deprecations and the like) are logged once
// each on the client's logger; [WithWarningHandler] replaces that, e.g. with
// [WarningWriter] to print them as kubectl does.
//
// # Lists
//
// [List] streams the items of any typed or dynamic List call page by page
// (Limit and Continue), typed, with memory bounded by one page; the type
// argument is the item's pointer type, as everywhere in kubekit (a value
// type does not compile):
//
//	for pod, err := range client.List[*corev1.Pod](ctx, c.Kubernetes().CoreV1().Pods("").List) {
//		if err != nil {
//			return err
//		}
//		use(pod)
//	}
//
// [ListDynamic] does the same for any resource, [Collect] gathers a whole
// list and [Count] counts it (one request when the server can tell). A
// continue token that expired mid-list (410 Gone after etcd compaction) never
// causes a silent partial result or an endless loop: [OnExpired] chooses
// between failing with [*ExpiredError] (the default), continuing from the
// server's newer snapshot ([ListInfo.Inconsistent] says so) and restarting.
//
// # Writes
//
// [Client.Get], [Client.Create], [Client.Update], [Client.Patch] (JSON, merge,
// strategic merge), [Client.Delete] and [Client.DeleteAllOf] (every object of
// a kind in a namespace matching [LabelSelector] and [FieldSelector], in one
// request) work on any object: typed structs such
// as *appsv1.Deployment (kind from client-go's scheme) and
// *unstructured.Unstructured custom resources, mapped through the RESTMapper.
// A namespaced object without a namespace goes to [InNamespace], else the
// client's namespace. [Client.Apply] is server-side apply (field manager
// "kubekit") and reports whether the object was created, configured or left
// unchanged, judged from the API server's answers:
//
//	outcome, err := c.Apply(ctx, deployment, client.ForceOwnership(true))
//
// # Options of each verb
//
// Each verb takes its own option interface, as controller-runtime's client
// does, and each option type implements the interfaces of the verbs it makes
// sense for: passing [ForceOwnership] to Create or [GracePeriodSeconds] to
// Apply does not compile. Values are checked when the verb runs: an empty
// [FieldManager], a negative [GracePeriodSeconds], an unknown
// [FieldValidation] or [PropagationPolicy]... are errors naming the option,
// every mistake of one call joined.
//
//	verb                              option interface      options
//	Get, GetScale                     GetOption             InNamespace
//	Create                            CreateOption          DryRun FieldManager FieldValidation InNamespace
//	Update, Status().Update           UpdateOption          DryRun FieldManager FieldValidation InNamespace
//	Patch, Status().Patch, Scale      PatchOption           DryRun FieldManager FieldValidation InNamespace
//	Apply, ApplyConfiguration         ApplyOption           DryRun FieldManager FieldValidation InNamespace ForceOwnership Recreate
//	Status().Apply                    StatusApplyOption     DryRun FieldManager FieldValidation InNamespace ForceOwnership
//	Delete                            DeleteOption          DryRun InNamespace PropagationPolicy GracePeriodSeconds Preconditions
//	DeleteManifests                   DeleteManifestsOption DryRun InNamespace PropagationPolicy GracePeriodSeconds
//	DeleteAllOf                       DeleteAllOfOption     DryRun InNamespace PropagationPolicy GracePeriodSeconds LabelSelector FieldSelector
//	Evict                             EvictOption           DryRun InNamespace GracePeriodSeconds
//	ApplyManifests, ApplyAndPrune     ApplyManifestsOption  DryRun FieldManager FieldValidation InNamespace ForceOwnership Recreate EstablishTimeout Concurrency
//	Diff (always a dry run)           DiffOption            FieldManager FieldValidation InNamespace ForceOwnership
//	Wait                              WaitOption            InNamespace PollInterval OnStatus
//	List, ListDynamic, Collect, Count ListOption            PageSize LabelSelector FieldSelector AtResourceVersion OnExpired WithListInfo
//
// Options shared by several verbs go in a slice of each verb's interface:
//
//	applyOpts := []client.ApplyManifestsOption{client.DryRun(true), client.InNamespace(ns)}
//	deleteOpts := []client.DeleteManifestsOption{client.DryRun(true), client.InNamespace(ns)}
//
// # Manifests
//
// [ReadManifests] and [DecodeManifests] decode multi-document YAML and JSON
// (files, directories, stdin, kind: List) with a per-document size cap,
// alias-bomb protection and a cap on the whole input ([MaxInputSize],
// default 64 MiB), honouring ctx, so an endless input (/dev/zero, a pipe
// that never closes) fails instead of reading forever; every bad document is
// a [*ManifestError] naming its source and index, and paths without any
// object give [ErrNoObjects], kubectl's "no objects passed to apply". [Client.ApplyManifests] applies Namespaces, then CRDs
// (waiting until they are Established), then the rest; [Client.DeleteManifests]
// deletes in reverse, with propagation Background unless [PropagationPolicy]
// says otherwise, as kubectl delete does. Both attempt every object and report
// each result in input order, like kubectl apply -f.
//
// [Client.ApplyAndPrune] applies a set of manifests as members of a
// kubectl-compatible [ApplySet] (KEP-3659: a parent Secret or ConfigMap with
// kubectl's id) and prunes the members no longer in it; kubectl apply
// --prune --applyset and kubekit refuse each other's sets.
//
// [Client.Diff] is kubectl diff --server-side: the live object against the
// result of a dry-run apply, as YAML without managedFields, Secret data
// masked, with [DiffResult.Unified] for a unified diff.
//
// # Waiting
//
// [Client.Wait] polls a set of objects until they satisfy a [Condition]:
// [ForReady] (kstatus: Current, InProgress, Failed, Terminating, NotFound
// with kstatus's message), [ForDeleted] (gone, or re-created with a new uid)
// or [ForCondition] (a status condition, as kubectl wait --for=condition).
// [OnStatus] reports each change; ctx bounds the wait.
//
// # Errors
//
// Configuration problems (missing or malformed kubeconfig, unknown context,
// a context naming a missing cluster or user, a nil rest.Config or one
// without a Host, a server URL that is not http(s), a user agent with a
// newline, in-cluster outside a Pod, negative timeouts) are returned by [New]
// with the file or option named, all of an option list's mistakes at once.
// A nil list function or an unparsable selector is the error of [List]
// (and [Collect], [Count]), before any request. API errors are wrapped with %w, so
// apierrors.IsNotFound and friends keep working.
package client
