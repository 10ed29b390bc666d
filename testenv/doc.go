// Package testenv runs a real etcd and kube-apiserver as child processes on
// loopback, for tests of code that talks to Kubernetes: kubekit's own tests,
// benchmarks and examples, "make cluster", and your tests.
//
// # Overview
//
// [Start] creates a certificate authority and an admin client certificate
// (group system:masters), starts etcd and kube-apiserver on free loopback
// ports and waits until the API server is ready. [Env.Config] and
// [Env.KubeconfigPath] give admin access; [Env.UserConfig] and
// [Env.UserKubeconfigPath] authenticate as any user, and [WithUsers] creates
// users with limited RBAC, so Forbidden paths are testable. [WithCRDs] and
// [WithCRDFiles] install CustomResourceDefinitions before Start returns. A
// test package shares one Env through [RunMain] in TestMain:
//
//	var env *testenv.Env
//
//	func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m, func(e *testenv.Env) { env = e })) }
//
//	func TestThing(t *testing.T) {
//		cs := kubernetes.NewForConfigOrDie(env.Config())
//		...
//	}
//
// There is no controller-manager, scheduler or kubelet: Deployments create no
// Pods, deleted namespaces stay Terminating, and a new namespace has no
// default ServiceAccount. Write status through the status subresource to
// drive what a controller would.
//
// # Binaries
//
// Start looks for kube-apiserver and etcd in the directory of
// [WithBinaryDir]; else in $KUBEKIT_ASSETS; else in $KUBEBUILDER_ASSETS
// (setup-envtest's layout, so a directory an envtest user already has works);
// else in bin/k8s-<version> of the kubekit repository, found above the
// working directory or beside this package's source (a replace to a local
// clone). In a kubekit clone "make testbin" builds them from pinned Go
// modules into that directory. When none has both binaries, Start's error
// names every place tried and both ways to get them.
//
// # Fault injection
//
// [Env.RestartAPIServer] stops (SIGTERM) and starts the API server on the
// same address with etcd's data kept, optionally with extra flags for that
// start (e.g. "--min-request-timeout=5" so watches are closed often).
// [Env.KillAPIServer] kills it with SIGKILL, as a crash would, and
// [Env.StartAPIServer] brings it back. [Env.Compact] compacts etcd and
// restarts the API server so its watch cache forgets too: afterwards every
// older resourceVersion and continue token answers 410 Gone.
// [Env.CompactEtcd] compacts etcd alone (the watch cache keeps serving recent
// resourceVersions). [WithAPIServerFlags] adds flags to every start.
//
// # Processes
//
// This is a contract, tested: etcd and kube-apiserver each run in a process
// group of their own with a parent-death signal (SIGKILL), so they die with
// the process that started them, even when a test panics on any goroutine
// and no deferred cleanup runs. [Env.Stop] sends SIGTERM to each process
// group, then SIGKILL after [WithStopGrace] (default 10s: kube-apiserver can
// take long to stop on SIGTERM), waits until both are reaped, and removes the
// working directory unless [WithDir] named it. After Stop returns no process
// it started is left; Stop may be called more than once. [RunMain] stops the
// Env when the tests end, fail or panic on the TestMain goroutine.
package testenv
