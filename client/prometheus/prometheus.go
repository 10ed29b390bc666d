package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/tools/metrics"
)

// ErrHooksTaken is returned by [Register] when client-go's metrics hooks were
// set by other code in this process: client-go accepts one registration per
// process, so kubekit's adapters would never be called.
var ErrHooksTaken = errors.New("client-go's REST client metrics hooks are already registered by other code in this process")

// set is the metrics of one registry.
type set struct {
	requests, retries  *prom.CounterVec
	latency, rateLimit *prom.HistogramVec
}

// hooks fans client-go's calls out to every registered set. It is the one
// piece of process-wide state, created by the first Register call, because
// client-go's hooks are process-wide.
type hooks struct {
	mu   sync.RWMutex
	sets []*set
}

var (
	installOnce sync.Once
	installed   *hooks
	installErr  error
)

// Register creates the REST client metrics in reg and makes client-go report
// to them (and to every registry given to an earlier call). It fails if reg
// already has metrics with these names, or with [ErrHooksTaken] if other code
// registered client-go's hooks first.
func Register(reg prom.Registerer) error {
	if reg == nil {
		return errors.New("client/prometheus: Register(nil): pass a registry, e.g. prometheus.NewRegistry()")
	}
	installOnce.Do(func() {
		h := &hooks{}
		metrics.Register(metrics.RegisterOpts{
			RequestLatency:     latencyHook{h, func(s *set) *prom.HistogramVec { return s.latency }},
			RateLimiterLatency: latencyHook{h, func(s *set) *prom.HistogramVec { return s.rateLimit }},
			RequestResult:      resultHook{h, func(s *set) *prom.CounterVec { return s.requests }},
			RequestRetry:       retryHook{h},
		})
		// client-go's Register silently ignores all but the first call.
		if r, ok := metrics.RequestResult.(resultHook); !ok || r.h != h {
			installErr = ErrHooksTaken
			return
		}
		installed = h
	})
	if installErr != nil {
		return fmt.Errorf("client/prometheus: %w (k8s.io/component-base's client metrics, or a metrics.Register call); use the registry that code registered with", installErr)
	}
	s := &set{
		requests: prom.NewCounterVec(prom.CounterOpts{
			Name: "rest_client_requests_total",
			Help: "Number of HTTP requests, partitioned by status code, method, and host.",
		}, []string{"code", "method", "host"}),
		retries: prom.NewCounterVec(prom.CounterOpts{
			Name: "rest_client_request_retries_total",
			Help: "Number of request retries, partitioned by status code, verb, and host.",
		}, []string{"code", "method", "host"}),
		latency: prom.NewHistogramVec(prom.HistogramOpts{
			Name:    "rest_client_request_duration_seconds",
			Help:    "Request latency in seconds. Broken down by verb, and host.",
			Buckets: []float64{0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0},
		}, []string{"verb", "host"}),
		rateLimit: prom.NewHistogramVec(prom.HistogramOpts{
			Name:    "rest_client_rate_limiter_duration_seconds",
			Help:    "Client side rate limiter latency in seconds. Broken down by verb, and host.",
			Buckets: []float64{0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0},
		}, []string{"verb", "host"}),
	}
	var done []prom.Collector
	for _, c := range []prom.Collector{s.requests, s.retries, s.latency, s.rateLimit} {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			return fmt.Errorf("client/prometheus: Register: %w (Register was already called with this registry?)", err)
		}
		done = append(done, c)
	}
	installed.mu.Lock()
	installed.sets = append(installed.sets, s)
	installed.mu.Unlock()
	return nil
}

func (h *hooks) each(f func(*set)) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, s := range h.sets {
		f(s)
	}
}

type latencyHook struct {
	h   *hooks
	vec func(*set) *prom.HistogramVec
}

func (l latencyHook) Observe(_ context.Context, verb string, u url.URL, d time.Duration) {
	l.h.each(func(s *set) { l.vec(s).WithLabelValues(verb, u.Host).Observe(d.Seconds()) })
}

type resultHook struct {
	h   *hooks
	vec func(*set) *prom.CounterVec
}

func (r resultHook) Increment(_ context.Context, code, method, host string) {
	r.h.each(func(s *set) { r.vec(s).WithLabelValues(code, method, host).Inc() })
}

type retryHook struct{ h *hooks }

func (r retryHook) IncrementRetry(_ context.Context, code, method, host string) {
	r.h.each(func(s *set) { s.retries.WithLabelValues(code, method, host).Inc() })
}
