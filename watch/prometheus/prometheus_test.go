package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/watch"
	watchprom "github.com/kubekit/kubekit/watch/prometheus"
)

// flakyCheckpoint fails its first save.
type flakyCheckpoint struct {
	*watch.MemoryCheckpoint
	saves atomic.Int32
}

func (f *flakyCheckpoint) Save(ctx context.Context, s *watch.State) error {
	if f.saves.Add(1) == 1 {
		return errors.New("disk full")
	}
	return f.MemoryCheckpoint.Save(ctx, s)
}

func value(t *testing.T, reg *prom.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				if !has(m, k, v) {
					continue metric
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func has(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatchMetrics runs a real watch: initial events, live events, a gap
// forced by compaction (a re-list with synthetic events), a failed and then
// successful checkpoint save, and the age of the last event.
func TestWatchMetrics(t *testing.T) {
	// The restarted API server's process waiter and the connections of its
	// readiness probes belong to testenv.
	leakOpts := []goleak.Option{goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/kubekit/kubekit/testenv.startProcess.func1"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop")}
	reg := prom.NewRegistry()
	m, err := watchprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.WithRESTConfig(env.Config()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Connections close a moment after Close; poll, then verify.
		deadline := time.Now().Add(10 * time.Second)
		for {
			c.Close()
			if goleak.Find(leakOpts...) == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		goleak.VerifyNone(t, leakOpts...)
	}()
	ctx := t.Context()
	cms := c.Kubernetes().CoreV1().ConfigMaps("default")
	mk := func(name string) {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"test": "metrics"}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("before-0")
	cp := &flakyCheckpoint{MemoryCheckpoint: watch.NewMemoryCheckpoint()}
	w, err := watch.New[*corev1.ConfigMap](ctx, c, watch.WithNamespace("default"), watch.WithLabelSelector("test=metrics"),
		watch.WithCheckpoint(cp), watch.WithCheckpointBatch(1, 10*time.Millisecond), watch.WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- w.Run(runCtx, func(_ context.Context, e watch.Event[*corev1.ConfigMap]) error {
			mu.Lock()
			seen = append(seen, fmt.Sprintf("%s %s %v", e.Type, e.Object.Name, e.Synthetic))
			mu.Unlock()
			return nil
		})
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	count := func(s string) int {
		mu.Lock()
		defer mu.Unlock()
		return strings.Count(strings.Join(seen, "\n"), s)
	}
	eventually(t, "the initial ADDED", func() bool { return count("ADDED before-0 false") == 1 })
	mk("live-1")
	eventually(t, "the live ADDED", func() bool { return count("ADDED live-1 false") == 1 })

	// A gap: history moves past the watch's position (a write it does not
	// watch) and is compacted while the API server is down.
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unwatched"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := env.KillAPIServer(); err != nil {
		t.Fatal(err)
	}
	if _, err := env.CompactEtcd(ctx); err != nil {
		t.Fatal(err)
	}
	if err := env.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "live-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the DELETED", func() bool { return count("DELETED live-1") == 1 })

	labels := func(kv ...string) map[string]string {
		l := map[string]string{"resource": "configmaps"}
		for i := 0; i < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		return l
	}
	eventually(t, "a successful save after the failed one", func() bool {
		v, _ := value(t, reg, "kubekit_watch_checkpoint_saves_total", labels("result", "success"))
		return v >= 1
	})
	if v, _ := value(t, reg, "kubekit_watch_events_total", labels("type", "ADDED", "synthetic", "false")); v != 2 {
		t.Errorf("ADDED events = %v, want 2", v)
	}
	if v, _ := value(t, reg, "kubekit_watch_events_total", labels("type", "DELETED")); v != 1 {
		t.Errorf("DELETED events = %v, want 1", v)
	}
	if v, _ := value(t, reg, "kubekit_watch_relists_total", labels("reason", "start")); v != 1 {
		t.Errorf("start relists = %v, want 1", v)
	}
	eventually(t, "the re-list after the gap", func() bool {
		v, _ := value(t, reg, "kubekit_watch_relists_total", labels("reason", "gap"))
		return v == 1
	})
	if v, _ := value(t, reg, "kubekit_watch_checkpoint_saves_total", labels("result", "error")); v != 1 {
		t.Errorf("failed saves = %v, want 1", v)
	}
	if v, ok := value(t, reg, "kubekit_watch_checkpoint_save_duration_seconds", labels()); !ok || v < 2 {
		t.Errorf("save durations observed = %v, want >= 2", v)
	}
	if v, ok := value(t, reg, "kubekit_watch_last_event_age_seconds", labels()); !ok || v < 0 || v > 60 {
		t.Errorf("last event age = %v (%v)", v, ok)
	}
	mu.Lock()
	t.Logf("events seen: %v", seen)
	mu.Unlock()
}

func TestNewErrors(t *testing.T) {
	if _, err := watchprom.New(nil); err == nil || !strings.Contains(err.Error(), "New(nil)") {
		t.Fatalf("New(nil) = %v", err)
	}
	reg := prom.NewRegistry()
	if _, err := watchprom.New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := watchprom.New(reg); err == nil || !strings.Contains(err.Error(), "share one Metrics") {
		t.Fatalf("second New on one registry = %v", err)
	}
}
