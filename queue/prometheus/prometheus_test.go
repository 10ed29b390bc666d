package prometheus_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
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

func TestReconcileMetrics(t *testing.T) {
	reg := prom.NewRegistry()
	p, err := queueprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.New[string](queue.WithName("mirror"), queue.WithMetricsProvider(p),
		queue.WithBackoff(time.Millisecond, time.Millisecond), queue.WithBucket(0, 0), queue.WithLogger(logr.Discard()))
	if err != nil {
		t.Fatal(err)
	}
	for _, item := range []string{"ok", "later", "flaky", "invalid", "boom"} {
		q.Add(item)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var seen sync.Map
	err = q.Run(ctx, 1, func(_ context.Context, item string) (queue.Result, error) {
		_, again := seen.LoadOrStore(item, true)
		switch item {
		case "later":
			if !again {
				return queue.Result{RequeueAfter: time.Millisecond}, nil
			}
		case "flaky":
			if !again {
				return queue.Result{}, errors.New("try again")
			}
		case "invalid":
			return queue.Result{}, queue.TerminalError(errors.New("bad spec"))
		case "boom":
			if !again {
				panic("kaboom")
			}
		}
		if _, ok := seen.Load("done-" + item); !ok {
			seen.Store("done-"+item, true)
		}
		if count(&seen, "done-") == 4 { // ok, later, flaky, boom succeeded
			cancel()
		}
		return queue.Result{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `
# HELP controller_runtime_reconcile_errors_total Total number of reconciliation errors per controller.
# TYPE controller_runtime_reconcile_errors_total counter
controller_runtime_reconcile_errors_total{controller="mirror"} 3
# HELP controller_runtime_reconcile_panics_total Total number of reconciliation panics per controller.
# TYPE controller_runtime_reconcile_panics_total counter
controller_runtime_reconcile_panics_total{controller="mirror"} 1
# HELP controller_runtime_reconcile_total Total number of reconciliations per controller.
# TYPE controller_runtime_reconcile_total counter
controller_runtime_reconcile_total{controller="mirror",result="error"} 3
controller_runtime_reconcile_total{controller="mirror",result="requeue_after"} 1
controller_runtime_reconcile_total{controller="mirror",result="success"} 4
# HELP controller_runtime_terminal_reconcile_errors_total Total number of terminal reconciliation errors per controller.
# TYPE controller_runtime_terminal_reconcile_errors_total counter
controller_runtime_terminal_reconcile_errors_total{controller="mirror"} 1
# HELP controller_runtime_active_workers Number of currently used workers per controller.
# TYPE controller_runtime_active_workers gauge
controller_runtime_active_workers{controller="mirror"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "controller_runtime_reconcile_errors_total",
		"controller_runtime_reconcile_panics_total", "controller_runtime_reconcile_total",
		"controller_runtime_terminal_reconcile_errors_total", "controller_runtime_active_workers"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "controller_runtime_reconcile_time_seconds"); n != 1 {
		t.Fatalf("reconcile_time series = %d, want 1", n)
	}
}

func count(m *sync.Map, prefix string) int {
	n := 0
	m.Range(func(k, _ any) bool {
		if strings.HasPrefix(k.(string), prefix) {
			n++
		}
		return true
	})
	return n
}
