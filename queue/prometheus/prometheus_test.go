package prometheus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/kubekit/kubekit/queue"
	queueprom "github.com/kubekit/kubekit/queue/prometheus"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestQueueMetrics(t *testing.T) {
	reg := prom.NewRegistry()
	p, err := queueprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.New[string](queue.WithName("things"), queue.WithMetricsProvider(p), queue.WithBackoff(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	q.Add("a")
	q.Add("b")
	q.Add("a") // de-duplicated
	fails := 0
	ctx, cancel := context.WithCancel(t.Context())
	err = q.Run(ctx, 1, func(_ context.Context, item string) (queue.Result, error) {
		if item == "b" && fails == 0 {
			fails++
			return queue.Result{}, context.DeadlineExceeded // retried once
		}
		if item == "b" {
			cancel()
		}
		return queue.Result{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `
# HELP workqueue_adds_total Total number of adds handled by workqueue.
# TYPE workqueue_adds_total counter
workqueue_adds_total{name="things"} 3
# HELP workqueue_depth Current depth of workqueue.
# TYPE workqueue_depth gauge
workqueue_depth{name="things"} 0
# HELP workqueue_retries_total Total number of retries handled by workqueue.
# TYPE workqueue_retries_total counter
workqueue_retries_total{name="things"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "workqueue_adds_total", "workqueue_depth", "workqueue_retries_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "workqueue_work_duration_seconds"); n != 1 {
		t.Fatalf("work_duration series = %d, want 1", n)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := queueprom.New(nil); err == nil || !strings.Contains(err.Error(), "nil registerer") {
		t.Fatalf("New(nil) = %v", err)
	}
	reg := prom.NewRegistry()
	if _, err := queueprom.New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := queueprom.New(reg); err == nil || !strings.Contains(err.Error(), "share one Provider") {
		t.Fatalf("second New on one registry = %v", err)
	}
}
