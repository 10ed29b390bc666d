package prometheus_test

import (
	"strings"
	"testing"

	prom "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubekit/kubekit/client"
	clientprom "github.com/kubekit/kubekit/client/prometheus"
)

// sum adds up a counter's or histogram's samples whose labels match want.
func sum(t *testing.T, reg *prom.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				if !hasLabel(m, k, v) {
					continue metric
				}
			}
			if c := m.GetCounter(); c != nil {
				total += c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				total += float64(h.GetSampleCount())
			}
		}
	}
	return total
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

func TestRegisterCountsRealRequests(t *testing.T) {
	reg := prom.NewRegistry()
	if err := clientprom.Register(reg); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.WithRESTConfig(env.Config()), client.WithQPS(50), client.WithBurst(100))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	host := strings.TrimPrefix(env.Config().Host, "https://")
	before := sum(t, reg, "rest_client_requests_total", map[string]string{"code": "404", "method": "GET", "host": host})
	for range 3 {
		_, err := c.Kubernetes().CoreV1().ConfigMaps("default").Get(t.Context(), "no-such-configmap", metav1.GetOptions{})
		if err == nil {
			t.Fatal("want NotFound")
		}
	}
	if got := sum(t, reg, "rest_client_requests_total", map[string]string{"code": "404", "method": "GET", "host": host}) - before; got != 3 {
		t.Fatalf("rest_client_requests_total{code=404,method=GET} grew by %v, want 3", got)
	}
	if got := sum(t, reg, "rest_client_request_duration_seconds", map[string]string{"verb": "GET", "host": host}); got < 3 {
		t.Fatalf("rest_client_request_duration_seconds has %v GET samples, want >= 3", got)
	}
	if got := sum(t, reg, "rest_client_rate_limiter_duration_seconds", map[string]string{"verb": "GET"}); got < 3 {
		t.Fatalf("rest_client_rate_limiter_duration_seconds has %v GET samples, want >= 3", got)
	}

	// The same registry twice is an error; another registry gets every request too.
	if err := clientprom.Register(reg); err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("second Register on one registry = %v, want an error", err)
	}
	reg2 := prom.NewRegistry()
	if err := clientprom.Register(reg2); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ServerVersion(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := sum(t, reg2, "rest_client_requests_total", map[string]string{"code": "200"}); got < 1 {
		t.Fatalf("the second registry counted %v requests", got)
	}
	if err := clientprom.Register(nil); err == nil || !strings.Contains(err.Error(), "Register(nil)") {
		t.Fatalf("Register(nil) = %v", err)
	}
}
