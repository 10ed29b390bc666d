package queue_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"k8s.io/client-go/util/workqueue"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/kubekit/kubekit/queue"
)

// runQueue starts q.Run in the background and returns a stop function that
// cancels it and returns Run's error. The test fails if Run is still running
// when the test ends.
func runQueue[T comparable](t *testing.T, q *queue.Queue[T], workers int, fn queue.ReconcileFunc[T]) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- q.Run(ctx, workers, fn) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(20 * time.Second):
				err = errors.New("Run did not return")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil && !errors.Is(err, queue.ErrDrainTimeout) {
			t.Errorf("Run: %v", err)
		}
	})
	return stop
}

// logSink collects log lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.lines = append(s.lines, args)
	}, funcr.Options{Verbosity: 2})
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

func TestRunProcessesEveryItem(t *testing.T) {
	q := newQueue[int](t)
	var mu sync.Mutex
	seen := map[int]int{}
	stop := runQueue(t, q, 4, func(_ context.Context, i int) (queue.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		seen[i]++
		return queue.Result{}, nil
	})
	for i := range 1000 {
		q.Add(i)
	}
	eventually(t, "1000 items reconciled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 1000
	})
	if err := stop(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	for i, n := range seen {
		if n != 1 {
			t.Errorf("item %d reconciled %d times, want 1", i, n)
		}
	}
	if !q.ShuttingDown() {
		t.Error("queue not shut down after Run returned")
	}
}

func TestRunRetriesThenDrops(t *testing.T) {
	var calls atomic.Int32
	type drop struct {
		item string
		err  error
	}
	drops := make(chan drop, 1)
	var logs logSink
	boom := errors.New("boom")
	q := newQueue[string](t,
		queue.WithBackoff(time.Millisecond, time.Millisecond), queue.WithBucket(0, 0),
		queue.WithMaxRetries(3),
		queue.WithOnDrop(func(item string, err error) { drops <- drop{item, err} }),
		queue.WithLogger(logs.logger()))
	runQueue(t, q, 2, func(context.Context, string) (queue.Result, error) {
		calls.Add(1)
		return queue.Result{}, boom
	})
	q.Add("x")
	var d drop
	select {
	case d = <-drops:
	case <-time.After(10 * time.Second):
		t.Fatalf("item not dropped; %d calls", calls.Load())
	}
	if d.item != "x" || !errors.Is(d.err, boom) {
		t.Fatalf("drop = %+v, want x and boom", d)
	}
	if n := calls.Load(); n != 4 {
		t.Fatalf("reconcile called %d times, want 4 (1 + 3 retries)", n)
	}
	if n := q.NumRequeues("x"); n != 0 {
		t.Fatalf("NumRequeues after drop = %d, want 0 (forgotten)", n)
	}
	l := logs.String()
	if !strings.Contains(l, "Dropping item") || !strings.Contains(l, `"item"="x"`) {
		t.Fatalf("no drop log line for x:\n%s", l)
	}
	if n := strings.Count(l, `"msg"="Reconcile failed, retrying"`); n != 3 || !strings.Contains(l, `"retry"=3`) {
		t.Fatalf("want 3 retry log lines, up to retry 3; got %d:\n%s", n, l)
	}
}

func TestRunMaxRetries(t *testing.T) {
	tests := []struct {
		name       string
		maxRetries int
		failures   int // reconcile fails this many times, then succeeds
		wantCalls  int32
		wantDrop   bool
	}{
		{"succeeds after retries", 5, 2, 3, false},
		{"zero drops at first failure", 0, 1, 1, true},
		{"negative retries forever", -1, 30, 31, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			var dropped atomic.Bool
			finished := make(chan struct{})
			q := newQueue[string](t,
				queue.WithBackoff(time.Microsecond, time.Microsecond), queue.WithBucket(0, 0),
				queue.WithMaxRetries(tt.maxRetries),
				queue.WithOnDrop(func(string, error) { dropped.Store(true); close(finished) }),
				queue.WithLogger(logr.Discard()))
			runQueue(t, q, 1, func(context.Context, string) (queue.Result, error) {
				n := calls.Add(1)
				if int(n) <= tt.failures {
					return queue.Result{}, fmt.Errorf("failure %d", n)
				}
				close(finished)
				return queue.Result{}, nil
			})
			q.Add("x")
			select {
			case <-finished:
			case <-time.After(10 * time.Second):
				t.Fatalf("neither success nor drop; %d calls", calls.Load())
			}
			if n := calls.Load(); n != tt.wantCalls || dropped.Load() != tt.wantDrop {
				t.Fatalf("calls = %d, dropped = %v; want %d, %v", n, dropped.Load(), tt.wantCalls, tt.wantDrop)
			}
			eventually(t, "backoff reset", func() bool { return q.NumRequeues("x") == 0 })
		})
	}
}

func TestRunBackoffFollowsClock(t *testing.T) {
	// With a fake clock the retries of a failing item happen exactly at
	// base*2^n, capped at max: t0, +1s, +2s, +4s, +4s.
	t0 := time.Unix(1000, 0)
	fc := testingclock.NewFakeClock(t0)
	q := newQueue[string](t, queue.WithClock(fc), queue.WithBackoff(time.Second, 4*time.Second),
		queue.WithBucket(0, 0), queue.WithMaxRetries(-1), queue.WithLogger(logr.Discard()))
	var mu sync.Mutex
	var at []time.Duration
	runQueue(t, q, 1, func(context.Context, string) (queue.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, fc.Since(t0))
		return queue.Result{}, errors.New("fail")
	})
	q.Add("x")
	want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second, 11 * time.Second}
	for i := 1; i < len(want); i++ {
		// Waiters: the delaying layer's heartbeat plus the retry's timer.
		eventually(t, fmt.Sprintf("retry %d scheduled", i), func() bool { return fc.Waiters() == 2 && q.NumRequeues("x") == i })
		fc.Step(want[i] - want[i-1])
		eventually(t, fmt.Sprintf("call %d", i+1), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(at) == i+1
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(at) != fmt.Sprint(want) {
		t.Fatalf("reconcile times = %v, want %v", at, want)
	}
}

// recordingLimiter records the delay its inner limiter gives each retry.
type recordingLimiter struct {
	workqueue.TypedRateLimiter[string]
	mu     sync.Mutex
	delays []time.Duration
}

func (r *recordingLimiter) When(item string) time.Duration {
	d := r.TypedRateLimiter.When(item)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delays = append(r.delays, d)
	return d
}

func TestRunWithCustomRateLimiter(t *testing.T) {
	rl := &recordingLimiter{TypedRateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Millisecond, 4*time.Millisecond)}
	dropped := make(chan struct{})
	q := newQueue[string](t, queue.WithRateLimiter[string](rl), queue.WithMaxRetries(4),
		queue.WithOnDrop(func(string, error) { close(dropped) }), queue.WithLogger(logr.Discard()))
	runQueue(t, q, 1, func(context.Context, string) (queue.Result, error) {
		return queue.Result{}, errors.New("fail")
	})
	q.Add("x")
	select {
	case <-dropped:
	case <-time.After(10 * time.Second):
		t.Fatal("not dropped")
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond}
	if fmt.Sprint(rl.delays) != fmt.Sprint(want) {
		t.Fatalf("backoff delays = %v, want %v", rl.delays, want)
	}
}

func TestRunRecoversPanics(t *testing.T) {
	var logs logSink
	var calls atomic.Int32
	done := make(chan struct{})
	q := newQueue[string](t, queue.WithBackoff(time.Millisecond, time.Millisecond), queue.WithLogger(logs.logger()))
	runQueue(t, q, 1, func(_ context.Context, item string) (queue.Result, error) {
		if calls.Add(1) == 1 {
			panic("kaboom")
		}
		close(done)
		return queue.Result{}, nil
	})
	q.Add("x")
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("item not retried after panic")
	}
	l := logs.String()
	for _, want := range []string{"Reconcile panicked", "kaboom", "reconcile panicked", "run_test.go", `"stack"=`} {
		if !strings.Contains(l, want) {
			t.Errorf("panic log lacks %q:\n%s", want, l)
		}
	}
}

func TestRunPanicErrorIsErrPanic(t *testing.T) {
	errc := make(chan error, 1)
	q := newQueue[string](t, queue.WithMaxRetries(0), queue.WithLogger(logr.Discard()),
		queue.WithOnDrop(func(_ string, err error) { errc <- err }))
	runQueue(t, q, 1, func(context.Context, string) (queue.Result, error) { panic(errors.New("inner")) })
	q.Add("x")
	select {
	case err := <-errc:
		if !errors.Is(err, queue.ErrPanic) || !strings.Contains(err.Error(), "inner") {
			t.Fatalf("drop err = %v, want ErrPanic mentioning inner", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not dropped")
	}
}

func TestRunRequeueAfter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	fc := testingclock.NewFakeClock(t0)
	q := newQueue[string](t, queue.WithClock(fc))
	var mu sync.Mutex
	var at []time.Duration
	runQueue(t, q, 1, func(context.Context, string) (queue.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, fc.Since(t0))
		if len(at) < 3 {
			return queue.RequeueAfter(time.Minute)
		}
		return queue.Result{}, nil
	})
	calls := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(at)
	}
	q.Add("x")
	for i := 1; i < 3; i++ {
		eventually(t, "requeue scheduled", func() bool { return calls() == i && fc.Waiters() == 2 })
		if n := q.NumRequeues("x"); n != 0 {
			t.Fatalf("NumRequeues = %d after a successful reconcile, want 0", n)
		}
		fc.Step(time.Minute)
	}
	eventually(t, "third call", func() bool { return calls() == 3 })
	mu.Lock()
	defer mu.Unlock()
	if want := []time.Duration{0, time.Minute, 2 * time.Minute}; fmt.Sprint(at) != fmt.Sprint(want) {
		t.Fatalf("reconcile times = %v, want %v", at, want)
	}
}

func TestRunDrainsInFlightOnCancel(t *testing.T) {
	q := newQueue[string](t)
	started := make(chan struct{})
	release := make(chan struct{})
	var sawCancel atomic.Bool
	var calls atomic.Int32
	stop := runQueue(t, q, 1, func(ctx context.Context, item string) (queue.Result, error) {
		calls.Add(1)
		if item == "slow" {
			close(started)
			<-release
			sawCancel.Store(ctx.Err() != nil)
		}
		return queue.Result{}, nil
	})
	q.Add("slow")
	<-started
	q.Add("queued") // waiting behind slow on the only worker
	errc := make(chan error, 1)
	go func() { errc <- stop() }()
	eventually(t, "queue shut down", q.ShuttingDown)
	select {
	case err := <-errc:
		t.Fatalf("Run returned %v while a reconcile was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatalf("Run = %v, want nil after a clean drain", err)
	}
	if sawCancel.Load() {
		t.Error("in-flight reconcile saw a cancelled context before the drain timeout")
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d reconciles, want 1: Run must not take new items after cancel", n)
	}
}

func TestRunDrainTimeout(t *testing.T) {
	q := newQueue[string](t, queue.WithDrainTimeout(100*time.Millisecond), queue.WithLogger(logr.Discard()))
	started := make(chan struct{})
	exited := make(chan struct{})
	stop := runQueue(t, q, 1, func(ctx context.Context, item string) (queue.Result, error) {
		defer close(exited)
		close(started)
		<-ctx.Done() // a reconcile that only stops when told to
		return queue.Result{}, ctx.Err()
	})
	q.Add("stuck")
	<-started
	err := stop()
	if !errors.Is(err, queue.ErrDrainTimeout) || !strings.Contains(err.Error(), "1 of 1 workers still busy after 100ms") {
		t.Fatalf("Run = %v, want ErrDrainTimeout naming the busy worker", err)
	}
	select {
	case <-exited: // its context was cancelled, so it returned
	case <-time.After(10 * time.Second):
		t.Fatal("stuck reconcile's context was not cancelled")
	}
}

func TestRunStopsWhenQueueShutDown(t *testing.T) {
	q := newQueue[string](t)
	errc := make(chan error, 1)
	go func() {
		errc <- q.Run(t.Context(), 3, func(context.Context, string) (queue.Result, error) { return queue.Result{}, nil })
	}()
	q.ShutDown()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after ShutDown")
	}
}

func TestRunArguments(t *testing.T) {
	ok := func(context.Context, string) (queue.Result, error) { return queue.Result{}, nil }
	q := newQueue[string](t)
	if err := q.Run(t.Context(), 0, ok); err == nil || !strings.Contains(err.Error(), "workers=0") {
		t.Fatalf("Run(workers=0) = %v", err)
	}
	if err := q.Run(t.Context(), 1, nil); err == nil || !strings.Contains(err.Error(), "nil reconcile") {
		t.Fatalf("Run(nil) = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := q.Run(ctx, 1, ok); err != nil {
		t.Fatalf("Run(cancelled ctx) = %v, want nil", err)
	}
	if !q.ShuttingDown() {
		t.Fatal("Run with a cancelled context did not shut the queue down")
	}
	if err := q.Run(t.Context(), 1, ok); !errors.Is(err, queue.ErrAlreadyRunning) {
		t.Fatalf("second Run = %v, want ErrAlreadyRunning", err)
	}
}

func TestRunConcurrentCalls(t *testing.T) {
	q := newQueue[string](t)
	ok := func(context.Context, string) (queue.Result, error) { return queue.Result{}, nil }
	ctx, cancel := context.WithCancel(t.Context())
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- q.Run(ctx, 1, ok) }()
	}
	// One Run returns at once with ErrAlreadyRunning, the other on cancel.
	if err := <-errs; !errors.Is(err, queue.ErrAlreadyRunning) {
		t.Fatalf("first Run to return = %v, want ErrAlreadyRunning", err)
	}
	cancel()
	if err := <-errs; err != nil {
		t.Fatalf("running Run = %v, want nil", err)
	}
}

func TestRunTerminalErrorIsNotRetried(t *testing.T) {
	var calls atomic.Int32
	drops := make(chan error, 1)
	var logs logSink
	invalid := errors.New("spec.replicas: must be positive")
	q := newQueue[string](t, queue.WithBackoff(time.Millisecond, time.Millisecond), queue.WithBucket(0, 0),
		queue.WithOnDrop(func(item string, err error) { drops <- err }), queue.WithLogger(logs.logger()))
	runQueue(t, q, 1, func(context.Context, string) (queue.Result, error) {
		calls.Add(1)
		return queue.Result{}, fmt.Errorf("sync: %w", queue.TerminalError(invalid))
	})
	q.Add("x")
	var err error
	select {
	case err = <-drops:
	case <-time.After(10 * time.Second):
		t.Fatalf("terminal error not reported to OnDrop; %d calls", calls.Load())
	}
	if !errors.Is(err, queue.ErrTerminal) || !errors.Is(err, invalid) {
		t.Fatalf("OnDrop got %v, want ErrTerminal wrapping the cause", err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("reconcile called %d times, want 1 (no retry)", n)
	}
	if l := logs.String(); !strings.Contains(l, "terminal error, not retrying") || strings.Contains(l, "Reconcile failed, retrying") {
		t.Fatalf("log:\n%s", l)
	}
	if queue.TerminalError(nil) != nil {
		t.Fatal("TerminalError(nil) != nil")
	}
}

func TestRunReconcileTimeout(t *testing.T) {
	errs := make(chan error, 1)
	q := newQueue[string](t, queue.WithReconcileTimeout(50*time.Millisecond), queue.WithMaxRetries(0),
		queue.WithOnDrop(func(item string, err error) { errs <- err }), queue.WithLogger(logr.Discard()))
	runQueue(t, q, 1, func(ctx context.Context, _ string) (queue.Result, error) {
		<-ctx.Done() // a reconcile that hangs until its deadline
		return queue.Result{}, ctx.Err()
	})
	q.Add("x")
	select {
	case err := <-errs:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reconcile timeout did not cancel the reconcile")
	}
	if _, err := queue.New[string](queue.WithReconcileTimeout(-time.Second)); err == nil || !strings.Contains(err.Error(), "WithReconcileTimeout(-1s)") {
		t.Fatalf("New with a negative timeout = %v", err)
	}
}

// TestRunRetriesForeverByDefault: with the default policy an item that keeps
// failing is never dropped (controller-runtime's choice).
func TestRunRetriesForeverByDefault(t *testing.T) {
	var calls atomic.Int32
	var dropped atomic.Bool
	q := newQueue[string](t, queue.WithBackoff(time.Microsecond, time.Microsecond), queue.WithBucket(0, 0),
		queue.WithOnDrop(func(string, error) { dropped.Store(true) }), queue.WithLogger(logr.Discard()))
	runQueue(t, q, 1, func(context.Context, string) (queue.Result, error) {
		calls.Add(1)
		return queue.Result{}, errors.New("still failing")
	})
	q.Add("x")
	eventually(t, "more than 15 retries (the old drop limit) x 2", func() bool { return calls.Load() > 31 })
	if dropped.Load() {
		t.Fatal("the default policy dropped the item")
	}
}
