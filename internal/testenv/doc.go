// Package testenv runs a real etcd and kube-apiserver (built by "make testbin"
// from the pinned modules in hack/testbin) as child processes on loopback, for
// kubekit's tests, benchmarks, examples and "make cluster".
//
// # Overview
//
// [Start] creates a certificate authority, an admin client certificate
// (group system:masters), starts etcd and kube-apiserver on free ports and
// waits for /readyz. [Env.Config] and [Env.Kubeconfig] give admin access;
// [Env.UserConfig] mints credentials for any user, so RBAC denials are
// testable. A test package shares one Env through [RunMain] in TestMain.
//
// # Failure injection
//
// [Env.RestartAPIServer] stops and starts the API server on the same address
// with etcd's data kept, optionally with extra flags (e.g.
// "--min-request-timeout=5"). [Env.Compact] compacts etcd; because the API
// server's watch cache keeps serving recent resourceVersions,
// [Env.CompactAndRestart] is what reliably makes older resourceVersions and
// continue tokens answer 410 Gone.
//
// # Processes
//
// Each child runs in its own process group with a parent-death signal, so it
// dies with the test binary even after a panic; Stop sends SIGTERM and then
// SIGKILL after a grace period. There is no controller-manager or scheduler:
// Deployments create no Pods and deleted namespaces stay Terminating.
package testenv
