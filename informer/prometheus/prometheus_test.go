package prometheus_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/informer"
	informerprom "github.com/kubekit/kubekit/informer/prometheus"
	"github.com/kubekit/kubekit/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.RunMain(m, func(e *testenv.Env) {
		env = e
		_ = os.Setenv("KUBECONFIG", e.KubeconfigPath())
	}))
}

func newClient(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(client.WithRESTConfig(env.Config()), client.WithRateLimit(false))
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-in first-out: after the factories' Shutdown, close
	// the keep-alive connections, then check that no goroutine is left.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c.Close()
			if goleak.Find(ignore) == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		goleak.VerifyNone(t, ignore)
	})
	return c
}

// series returns the value of each series of family name whose labels
// include want (gauges and counters; histograms give their sample count),
// keyed by the labels not in want.
func series(t *testing.T, reg *prom.Registry, name string, want map[string]string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			var rest []string
			for _, l := range m.GetLabel() {
				if v, ok := want[l.GetName()]; ok {
					if v != l.GetValue() {
						continue next
					}
				} else {
					rest = append(rest, l.GetName()+"="+l.GetValue())
				}
			}
			for k := range want {
				if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == k }) {
					continue next
				}
			}
			v := m.GetGauge().GetValue()
			if h := m.GetHistogram(); h != nil {
				v = float64(h.GetSampleCount())
			}
			out[strings.Join(rest, ",")] = v
		}
	}
	return out
}

func one(t *testing.T, reg *prom.Registry, name string, want map[string]string) float64 {
	t.Helper()
	s := series(t, reg, name, want)
	if len(s) != 1 {
		t.Fatalf("%s%v: %d series %v, want 1", name, want, len(s), s)
	}
	for _, v := range s {
		return v
	}
	return 0
}

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func namespace(t *testing.T, c *client.Client) string {
	t.Helper()
	ns := "infprom-" + rand.String(6)
	if _, err := c.Kubernetes().CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ns
}

func createConfigMaps(t *testing.T, c *client.Client, ns string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("cm-%d", i)}}
		if _, err := c.Kubernetes().CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// Two namespaces through one factory (typed), and the same resource cached
// metadata-only by a second factory: every informer reports client-go's
// series under its own name and its sync state per namespace.
func TestMetricsAgainstAPIServer(t *testing.T) {
	c := newClient(t)
	nsA, nsB := namespace(t, c), namespace(t, c)
	createConfigMaps(t, c, nsA, 0, 5)
	createConfigMaps(t, c, nsB, 0, 3)

	reg := prom.NewRegistry()
	m, err := informerprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	typed, err := informer.New(c, informer.WithNamespaces(nsA, nsB), informer.WithMetrics("typed", m))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(typed.Shutdown)
	cms, err := informer.For[*corev1.ConfigMap](t.Context(), typed)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := informer.New(c, informer.WithMetrics("meta", m))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(meta.Shutdown)
	metaCMs, err := informer.ForMetadata(t.Context(), meta, corev1.SchemeGroupVersion.WithResource("configmaps"))
	if err != nil {
		t.Fatal(err)
	}
	for name, inf := range map[string]informerprom.Source{"typed": cms, "meta": metaCMs} {
		if err := m.Watch(name, inf); err != nil {
			t.Fatal(err)
		}
	}
	cm := map[string]string{"group": "", "version": "v1", "resource": "configmaps"}
	with := func(kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range cm {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}

	// Not started: not synced, empty.
	for _, ns := range []string{nsA, nsB} {
		if v := one(t, reg, "informer_synced", with("name", "typed", "namespace", ns)); v != 0 {
			t.Errorf("informer_synced before Start = %v, want 0", v)
		}
	}

	typed.Start(t.Context())
	meta.Start(t.Context())
	for _, f := range []*informer.Factory{typed, meta} {
		if err := f.WaitForSync(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	for ns, n := range map[string]float64{nsA: 5, nsB: 3} {
		if v := one(t, reg, "informer_synced", with("name", "typed", "namespace", ns)); v != 1 {
			t.Errorf("informer_synced{namespace=%s} = %v, want 1", ns, v)
		}
		if v := one(t, reg, "informer_store_objects", with("name", "typed", "namespace", ns)); v != n {
			t.Errorf("informer_store_objects{namespace=%s} = %v, want %v", ns, v, n)
		}
		// client-go's series: one informer per namespace, named name/namespace.
		if v := one(t, reg, "informer_store_resource_version", with("name", "typed/"+ns)); v <= 0 {
			t.Errorf("informer_store_resource_version{name=typed/%s} = %v, want > 0", ns, v)
		}
		// The initial list is popped as one batch: one sample at least.
		if v := one(t, reg, "informer_processing_latency_seconds", with("name", "typed/"+ns)); v < 1 {
			t.Errorf("informer_processing_latency_seconds{name=typed/%s} has %v samples, want >= 1", ns, v)
		}
		one(t, reg, "informer_queued_items", with("name", "typed/"+ns))
	}
	all := one(t, reg, "informer_store_objects", with("name", "meta", "namespace", ""))
	if all < 8 {
		t.Errorf("metadata informer of all namespaces holds %v ConfigMaps, want >= 8", all)
	}
	if v := one(t, reg, "informer_store_resource_version", with("name", "meta")); v <= 0 {
		t.Errorf("informer_store_resource_version{name=meta} = %v, want > 0", v)
	}

	// Changes move the gauges: the resourceVersion grows with each write.
	rvBefore := one(t, reg, "informer_store_resource_version", with("name", "typed/"+nsA))
	popsBefore := one(t, reg, "informer_processing_latency_seconds", with("name", "typed/"+nsA))
	createConfigMaps(t, c, nsA, 5, 7)
	eventually(t, "7 objects in "+nsA, func() error {
		if v := one(t, reg, "informer_store_objects", with("name", "typed", "namespace", nsA)); v != 7 {
			return fmt.Errorf("informer_store_objects = %v", v)
		}
		if v := one(t, reg, "informer_store_resource_version", with("name", "typed/"+nsA)); v <= rvBefore {
			return fmt.Errorf("informer_store_resource_version = %v, was %v", v, rvBefore)
		}
		if v := one(t, reg, "informer_processing_latency_seconds", with("name", "typed/"+nsA)); v <= popsBefore {
			return fmt.Errorf("informer_processing_latency_seconds samples = %v, was %v", v, popsBefore)
		}
		return nil
	})
	eventually(t, "queue drained", func() error {
		if v := one(t, reg, "informer_queued_items", with("name", "typed/"+nsA)); v != 0 {
			return fmt.Errorf("informer_queued_items = %v", v)
		}
		return nil
	})

	// After Shutdown the names are released: a new factory may take them.
	typed.Shutdown()
	again, err := informer.New(c, informer.WithNamespaces(nsA, nsB), informer.WithMetrics("typed", m))
	if err != nil {
		t.Fatalf("name not released by Shutdown: %v", err)
	}
	again.Shutdown()
}

func TestErrors(t *testing.T) {
	if _, err := informerprom.New(nil); err == nil || !strings.Contains(err.Error(), "New(nil)") {
		t.Errorf("New(nil) = %v", err)
	}
	var nilReg *prom.Registry
	if _, err := informerprom.New(nilReg); err == nil {
		t.Error("New((*Registry)(nil)) = nil error")
	}
	reg := prom.NewRegistry()
	m, err := informerprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := informerprom.New(reg); err == nil || !strings.Contains(err.Error(), "share one Metrics") {
		t.Errorf("second New on one registry = %v", err)
	}

	c := newClient(t)
	f, err := informer.New(c, informer.WithMetrics("dup", m))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Shutdown)
	if _, err := informer.New(c, informer.WithMetrics("dup", m)); err == nil || !strings.Contains(err.Error(), `WithMetrics("dup")`) || !strings.Contains(err.Error(), "own name") {
		t.Errorf("second factory with the same name: %v", err)
	}
	if _, err := informer.New(c, informer.WithMetrics("", m)); err == nil || !strings.Contains(err.Error(), `WithMetrics("", p): empty name`) {
		t.Errorf("WithMetrics(\"\"): %v", err)
	}
	var nilM *informerprom.Metrics
	if _, err := informer.New(c, informer.WithMetrics("x", nilM)); err == nil || !strings.Contains(err.Error(), "the provider is nil") {
		t.Errorf("WithMetrics(x, nil): %v", err)
	}

	cms, err := informer.For[*corev1.ConfigMap](t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Watch("", cms); err == nil || !strings.Contains(err.Error(), "empty name") {
		t.Errorf("Watch(\"\") = %v", err)
	}
	var nilInf *informer.Informer[*corev1.ConfigMap]
	if err := m.Watch("x", nilInf); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Errorf("Watch(x, nil) = %v", err)
	}
	if err := m.Watch("dup", cms); err != nil {
		t.Fatal(err)
	}
	if err := m.Watch("dup", cms); err == nil || !strings.Contains(err.Error(), "already watched") {
		t.Errorf("second Watch = %v", err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("Gather: %v", err)
	}
}
