package queue_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/util/workqueue"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/kubekit/kubekit/queue"
)

// newQueue builds a queue and shuts it down when the test ends.
func newQueue[T comparable](t *testing.T, opts ...queue.Option) *queue.Queue[T] {
	t.Helper()
	q, err := queue.New[T](opts...)
	if err != nil {
		t.Fatalf("queue.New: %v", err)
	}
	t.Cleanup(q.ShutDown)
	return q
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func get[T comparable](t *testing.T, q *queue.Queue[T]) T {
	t.Helper()
	item, shutdown := q.Get()
	if shutdown {
		t.Fatal("Get: queue is shut down")
	}
	return item
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		opts []queue.Option
		want string
	}{
		{"provider without name", []queue.Option{queue.WithMetricsProvider(&countingProvider{})}, "queue: WithMetricsProvider: the queue has no name"},
		{"queue: WithMetricsProvider(nil): the provider is nil", []queue.Option{queue.WithMetricsProvider(nil)}, "queue: WithMetricsProvider(nil): the provider is nil"},
		{"limiter and backoff", []queue.Option{queue.WithRateLimiter(workqueue.DefaultTypedControllerRateLimiter[string]()), queue.WithBackoff(time.Second, time.Minute)}, "cannot be combined"},
		{"limiter and bucket", []queue.Option{queue.WithRateLimiter(workqueue.DefaultTypedControllerRateLimiter[string]()), queue.WithBucket(1, 1)}, "cannot be combined"},
		{"nil limiter", []queue.Option{queue.WithRateLimiter[string](nil)}, "queue: WithRateLimiter(nil): the rate limiter is nil"},
		{"limiter of another type", []queue.Option{queue.WithRateLimiter(workqueue.DefaultTypedControllerRateLimiter[int]())}, "workqueue.TypedRateLimiter[string]"},
		{"zero backoff", []queue.Option{queue.WithBackoff(0, time.Second)}, "0 < base <= max"},
		{"max below base", []queue.Option{queue.WithBackoff(time.Second, time.Millisecond)}, "0 < base <= max"},
		{"bad bucket", []queue.Option{queue.WithBucket(10, 0)}, "burst > 0"},
		{"negative qps", []queue.Option{queue.WithBucket(-1, 5)}, "qps > 0"},
		{"drain timeout", []queue.Option{queue.WithDrainTimeout(0)}, "WithDrainTimeout(0s)"},
		{"queue: WithClock(nil): the clock is nil", []queue.Option{queue.WithClock(nil)}, "queue: WithClock(nil): the clock is nil"},
		{"nil drop callback", []queue.Option{queue.WithOnDrop[string](nil)}, "queue: WithOnDrop(nil): the callback is nil"},
		{"drop callback of another type", []queue.Option{queue.WithOnDrop(func(int, error) {})}, "func(string, error)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := queue.New[string](tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				if q != nil {
					q.ShutDown()
				}
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestDeduplication(t *testing.T) {
	q := newQueue[string](t)
	q.Add("a")
	q.Add("a")
	q.Add("b")
	if n := q.Len(); n != 2 {
		t.Fatalf("Len = %d after adding a, a, b; want 2", n)
	}
	if got := get(t, q); got != "a" {
		t.Fatalf("first Get = %q, want a (FIFO)", got)
	}
	// Adding an item being processed marks it dirty but does not queue it,
	// so no two workers ever hold the same item.
	q.Add("a")
	if n := q.Len(); n != 1 {
		t.Fatalf("Len = %d after re-adding a while processing; want 1", n)
	}
	q.Done("a") // dirty: queued again now
	if n := q.Len(); n != 2 {
		t.Fatalf("Len = %d after Done(a) while dirty; want 2", n)
	}
	if got := get(t, q); got != "b" {
		t.Fatalf("Get = %q, want b", got)
	}
	if got := get(t, q); got != "a" {
		t.Fatalf("Get = %q, want a (re-added on Done)", got)
	}
	q.Done("a")
	q.Done("b")
	if n := q.Len(); n != 0 {
		t.Fatalf("Len = %d after Done without re-add; want 0", n)
	}
}

func TestShutDown(t *testing.T) {
	q := newQueue[int](t)
	q.Add(1)
	q.Add(2)
	q.ShutDown()
	if !q.ShuttingDown() {
		t.Fatal("ShuttingDown = false after ShutDown")
	}
	q.Add(3)                           // ignored
	q.AddAfter(4, time.Hour)           // ignored, and must not block
	q.AddRateLimited(5)                // ignored
	for _, want := range []int{1, 2} { // queued items are still handed out
		if got := get(t, q); got != want {
			t.Fatalf("Get = %d, want %d", got, want)
		}
	}
	if item, shutdown := q.Get(); !shutdown {
		t.Fatalf("Get after draining = %d, want shutdown", item)
	}
}

func TestShutDownWithDrain(t *testing.T) {
	q := newQueue[string](t)
	q.Add("a")
	item := get(t, q)
	returned := make(chan struct{})
	go func() {
		q.ShutDownWithDrain()
		close(returned)
	}()
	eventually(t, "ShuttingDown", q.ShuttingDown)
	select {
	case <-returned:
		t.Fatal("ShutDownWithDrain returned while an item was still being processed")
	case <-time.After(50 * time.Millisecond):
	}
	q.Done(item)
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("ShutDownWithDrain did not return after Done")
	}
}

func TestDrain(t *testing.T) {
	t.Run("clean", func(t *testing.T) {
		q := newQueue[string](t)
		q.Add("a")
		item := get(t, q)
		go func() {
			eventually(t, "ShuttingDown", q.ShuttingDown)
			q.Done(item)
		}()
		if err := q.Drain(t.Context()); err != nil {
			t.Fatalf("Drain = %v, want nil", err)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		q := newQueue[string](t)
		q.Add("a")
		get(t, q) // never Done: client-go's ShutDownWithDrain would block forever
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		err := q.Drain(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Drain = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("cancelled before start", func(t *testing.T) {
		q := newQueue[string](t)
		q.Add("a")
		get(t, q)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := q.Drain(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Drain = %v, want context.Canceled", err)
		}
	})
}

// stepUntil advances fc by step until cond holds, checking invariant after
// every step. Small steps keep the test independent of when client-go's
// timer loop reads the clock (a timer created just after a Step would
// otherwise fire one step late, never early).
func stepUntil(t *testing.T, fc *testingclock.FakeClock, step time.Duration, cond func() bool, invariant func()) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met by fake time %v", fc.Now())
		}
		fc.Step(step)
		time.Sleep(100 * time.Microsecond) // let the timer loop run; correctness does not depend on it
		invariant()
	}
}

func TestAddAfterOrdering(t *testing.T) {
	t0 := time.Unix(1000, 0)
	fc := testingclock.NewFakeClock(t0)
	q := newQueue[string](t, queue.WithClock(fc))
	q.AddAfter("c", 3*time.Second)
	q.AddAfter("a", time.Second)
	q.AddAfter("b", 2*time.Second)
	q.AddAfter("a", 5*time.Second) // later duplicate: the earlier time wins
	q.AddAfter("now", 0)           // no delay: added at once
	if got := get(t, q); got != "now" {
		t.Fatalf("Get = %q, want now", got)
	}
	for i, want := range []struct {
		item string
		at   time.Duration
	}{{"a", time.Second}, {"b", 2 * time.Second}, {"c", 3 * time.Second}} {
		stepUntil(t, fc, 50*time.Millisecond, func() bool { return q.Len() > 0 }, func() {})
		got := get(t, q)
		if got != want.item {
			t.Fatalf("Get #%d = %q, want %q", i, got, want.item)
		}
		if now := fc.Since(t0); now < want.at {
			t.Fatalf("%s ready at +%v, before its delay %v", got, now, want.at)
		}
		q.Done(got)
	}
	fc.Step(10 * time.Second) // a's 5s entry was merged into its 1s one
	time.Sleep(10 * time.Millisecond)
	if n := q.Len(); n != 0 {
		t.Fatalf("Len = %d, want 0: a duplicate AddAfter must not add the item twice", n)
	}
}

func TestTokenBucketPacing(t *testing.T) {
	t0 := time.Unix(1000, 0)
	fc := testingclock.NewFakeClock(t0)
	// 10 qps, burst 2: 2 items at once, then one every 100ms. The tiny
	// backoff keeps the per-item limiter out of the way.
	q := newQueue[int](t, queue.WithClock(fc), queue.WithBucket(10, 2), queue.WithBackoff(time.Nanosecond, time.Nanosecond))
	for i := range 5 {
		q.AddRateLimited(i)
	}
	allowed := func() int { return min(5, 2+int(fc.Since(t0)/(100*time.Millisecond))) }
	stepUntil(t, fc, 10*time.Millisecond, func() bool { return q.Len() == 5 }, func() {
		if n, max := q.Len(), allowed(); n > max {
			t.Fatalf("at +%v: %d items ready, the bucket allows %d", fc.Since(t0), n, max)
		}
	})
	if took := fc.Since(t0); took < 300*time.Millisecond {
		t.Fatalf("5 items with burst 2 at 10 qps ready after %v, want >= 300ms", took)
	}
	// 0 and 1 share the burst and become ready at the same instant, so
	// their relative order is not defined; 2, 3 and 4 follow in order.
	got := make([]int, 5)
	for i := range got {
		got[i] = get(t, q)
	}
	if min(got[0], got[1]) != 0 || max(got[0], got[1]) != 1 || got[2] != 2 || got[3] != 3 || got[4] != 4 {
		t.Fatalf("Get order = %v, want {0,1} then 2 3 4 (the bucket keeps order)", got)
	}
}

func TestDefaultBackoff(t *testing.T) {
	// Without options a queue uses client-go's controller defaults: 5ms
	// doubling per failure, and NumRequeues counts until Forget.
	fc := testingclock.NewFakeClock(time.Unix(1000, 0))
	q := newQueue[string](t, queue.WithClock(fc))
	for i := range 3 {
		q.AddRateLimited("x")
		if n := q.NumRequeues("x"); n != i+1 {
			t.Fatalf("NumRequeues = %d, want %d", n, i+1)
		}
	}
	// 5ms, 10ms, 20ms: the earliest (5ms) wins in the delaying layer.
	t0 := fc.Now()
	stepUntil(t, fc, time.Millisecond, func() bool { return q.Len() == 1 }, func() {
		if q.Len() > 0 && fc.Since(t0) < 5*time.Millisecond {
			t.Fatalf("x ready after %v, before the 5ms base backoff", fc.Since(t0))
		}
	})
	q.Forget("x")
	if n := q.NumRequeues("x"); n != 0 {
		t.Fatalf("NumRequeues after Forget = %d, want 0", n)
	}
}

func TestMetricsProvider(t *testing.T) {
	p := &countingProvider{}
	q := newQueue[string](t, queue.WithName("test"), queue.WithMetricsProvider(p))
	q.Add("a")
	q.Add("b")
	q.Add("a") // de-duplicated: not counted
	q.AddRateLimited("c")
	eventually(t, "c added", func() bool { return q.Len() == 3 })
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.names["test"] == 0 {
		t.Fatalf("provider was not asked for metrics named test: %v", p.names)
	}
	if p.adds != 3 || p.retries != 1 {
		t.Fatalf("adds = %d, retries = %d; want 3 and 1", p.adds, p.retries)
	}
}

// countingProvider is a workqueue.MetricsProvider that counts adds and
// retries and ignores everything else.
type countingProvider struct {
	mu      sync.Mutex
	names   map[string]int
	adds    int
	retries int
}

type counter struct {
	p *countingProvider
	n *int
}

func (c counter) Inc() {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	*c.n++
}

type noop struct{}

func (noop) Inc()            {}
func (noop) Dec()            {}
func (noop) Set(float64)     {}
func (noop) Observe(float64) {}

func (p *countingProvider) named(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.names == nil {
		p.names = map[string]int{}
	}
	p.names[name]++
}

func (p *countingProvider) NewDepthMetric(name string) workqueue.GaugeMetric {
	p.named(name)
	return noop{}
}
func (p *countingProvider) NewAddsMetric(string) workqueue.CounterMetric {
	return counter{p, &p.adds}
}
func (p *countingProvider) NewLatencyMetric(string) workqueue.HistogramMetric { return noop{} }
func (p *countingProvider) NewWorkDurationMetric(string) workqueue.HistogramMetric {
	return noop{}
}
func (p *countingProvider) NewUnfinishedWorkSecondsMetric(string) workqueue.SettableGaugeMetric {
	return noop{}
}
func (p *countingProvider) NewLongestRunningProcessorSecondsMetric(string) workqueue.SettableGaugeMetric {
	return noop{}
}
func (p *countingProvider) NewRetriesMetric(string) workqueue.CounterMetric {
	return counter{p, &p.retries}
}
