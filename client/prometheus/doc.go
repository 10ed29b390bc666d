// Package prometheus exports client-go's REST client metrics (the requests
// every kubekit and client-go client sends) to a Prometheus registry you
// choose.
//
// client-go reports them through process-wide hooks (k8s.io/client-go/tools/metrics)
// that accept one registration per process and cover every client, kubekit's
// or not. Nothing is registered on import: call [Register] once, early in
// main (before the first request, or those requests are not counted):
//
//	reg := prometheus.NewRegistry()
//	if err := clientprom.Register(reg); err != nil { ... }
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// The metrics carry the names and labels of Kubernetes components
// (k8s.io/component-base) and controller-runtime, so existing dashboards work:
//
//   - rest_client_requests_total{code, method, host}
//   - rest_client_request_duration_seconds{verb, host}
//   - rest_client_rate_limiter_duration_seconds{verb, host}: time spent
//     waiting for the client's QPS/Burst limiter
//   - rest_client_request_retries_total{code, method, host}
//
// Calling Register again with another registry adds that registry: every
// registry gets every request. If other code (k8s.io/component-base, for
// example) took client-go's hooks first, Register returns [ErrHooksTaken]
// and registers nothing.
package prometheus
