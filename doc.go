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
// # Examples
//
// The examples directory holds one runnable program per capability; "make
// demo" runs them all against a real kube-apiserver and etcd.
package kubekit
