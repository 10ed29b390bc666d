package queue_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/util/workqueue"

	"github.com/kubekit/kubekit/queue"
)

// TestBadInputs tries bad arguments on every entry point: each gives a
// non-nil error within a bounded time, without a panic, naming what was
// wrong and how to fix it.
func TestBadInputs(t *testing.T) {
	ok := func(context.Context, string) (queue.Result, error) { return queue.Result{}, nil }
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	newErr := func(opts ...queue.Option) func() error {
		return func() error {
			q, err := queue.New[string](opts...)
			if q != nil {
				q.ShutDown()
			}
			return err
		}
	}
	tests := []struct {
		name string
		call func(q *queue.Queue[string]) error
		want []string
		is   error
	}{
		{"zero workers", func(q *queue.Queue[string]) error { return q.Run(t.Context(), 0, ok) }, []string{"workers=0", "at least 1"}, nil},
		{"negative workers", func(q *queue.Queue[string]) error { return q.Run(t.Context(), -3, ok) }, []string{"workers=-3", "at least 1"}, nil},
		{"nil reconcile", func(q *queue.Queue[string]) error { return q.Run(t.Context(), 1, nil) }, []string{"nil reconcile", "pass a func"}, nil},
		{"second Run", func(q *queue.Queue[string]) error {
			_ = q.Run(cancelled, 1, ok)
			return q.Run(t.Context(), 1, ok)
		}, []string{"queue.Run"}, queue.ErrAlreadyRunning},
		{"drain on cancelled context with work in flight", func(q *queue.Queue[string]) error {
			q.Add("a")
			if _, shutdown := q.Get(); shutdown {
				t.Fatal("shut down")
			}
			return q.Drain(cancelled)
		}, []string{"items still being processed"}, context.Canceled},
		{"zero drain timeout", func(*queue.Queue[string]) error { return newErr(queue.WithDrainTimeout(0))() }, []string{"WithDrainTimeout(0s)", "> 0"}, nil},
		{"negative drain timeout", func(*queue.Queue[string]) error { return newErr(queue.WithDrainTimeout(-time.Second))() }, []string{"WithDrainTimeout(-1s)"}, nil},
		{"negative backoff", func(*queue.Queue[string]) error { return newErr(queue.WithBackoff(-1, time.Second))() }, []string{"WithBackoff", "0 < base <= max"}, nil},
		{"nil clock", func(*queue.Queue[string]) error { return newErr(queue.WithClock(nil))() }, []string{"queue: WithClock(nil): the clock is nil", "omit the option"}, nil},
		{"limiter of the wrong type", func(*queue.Queue[string]) error {
			return newErr(queue.WithRateLimiter(workqueue.DefaultTypedControllerRateLimiter[int]()))()
		}, []string{"WithRateLimiter", "TypedRateLimiter[string]"}, nil},
		{"drop callback of the wrong type", func(*queue.Queue[string]) error { return newErr(queue.WithOnDrop(func(int, error) {}))() }, []string{"WithOnDrop", "func(string, error)"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue[string](t)
			done := make(chan error, 1)
			go func() {
				defer func() {
					if p := recover(); p != nil {
						done <- errors.New("panic")
						t.Errorf("panicked: %v", p)
					}
				}()
				done <- tt.call(q)
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("did not return within 10s")
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
		})
	}
}

// TestShutDownReleasesDrain is client-go's plain-queue contract: ShutDown
// releases a ShutDownWithDrain still waiting for an item that is never Done,
// even when the queue was shut down before (Run does so on cancel).
func TestShutDownReleasesDrain(t *testing.T) {
	q := newQueue[string](t)
	q.Add("a")
	get(t, q) // never Done
	q.ShutDown()
	returned := make(chan struct{})
	go func() {
		q.ShutDownWithDrain()
		close(returned)
	}()
	eventually(t, "ShutDown to release ShutDownWithDrain", func() bool {
		q.ShutDown() // repeated: the drain may not be waiting yet
		select {
		case <-returned:
			return true
		default:
			return false
		}
	})
}

// countingLimiter counts When calls: each is a requeue counted and a token
// spent.
type countingLimiter struct {
	workqueue.TypedRateLimiter[string]
	when atomic.Int64
}

func (c *countingLimiter) When(item string) time.Duration {
	c.when.Add(1)
	return c.TypedRateLimiter.When(item)
}

func TestAddRateLimitedAfterShutDownIgnored(t *testing.T) {
	rl := &countingLimiter{TypedRateLimiter: workqueue.DefaultTypedControllerRateLimiter[string]()}
	q := newQueue[string](t, queue.WithRateLimiter[string](rl))
	q.ShutDown()
	for range 3 {
		q.AddRateLimited("x")
	}
	if n := rl.when.Load(); n != 0 {
		t.Errorf("rate limiter consulted %d times after ShutDown, want 0", n)
	}
	if n := q.NumRequeues("x"); n != 0 {
		t.Errorf("NumRequeues = %d after ShutDown, want 0", n)
	}
}
