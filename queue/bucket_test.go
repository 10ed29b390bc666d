package queue

import (
	"testing"
	"time"

	"golang.org/x/time/rate"
	testingclock "k8s.io/utils/clock/testing"
)

func TestBucketFollowsClock(t *testing.T) {
	fc := testingclock.NewFakeClock(time.Unix(1000, 0))
	b := &bucket[string]{clock: fc, limiter: rate.NewLimiter(10, 2)}
	steps := []struct {
		step time.Duration
		want time.Duration
	}{
		{0, 0}, {0, 0}, // burst
		{0, 100 * time.Millisecond},
		{0, 200 * time.Millisecond},
		{time.Second, 0}, // refilled (the two reserved tokens were paid back after 300ms)
	}
	for i, s := range steps {
		fc.Step(s.step)
		if got := b.When("x"); got != s.want {
			t.Fatalf("When #%d = %v, want %v", i, got, s.want)
		}
	}
	if b.NumRequeues("x") != 0 {
		t.Fatal("NumRequeues of a bucket must be 0")
	}
}
