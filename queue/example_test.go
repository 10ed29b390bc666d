package queue_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"

	"github.com/kubekit/kubekit/queue"
)

// A plain queue: duplicates waiting in the queue are merged.
func ExampleNew() {
	q, err := queue.New[string]()
	if err != nil {
		panic(err)
	}
	defer q.ShutDown()
	q.Add("default/a")
	q.Add("default/b")
	q.Add("default/a")
	fmt.Println("len:", q.Len())
	item, _ := q.Get()
	fmt.Println("got:", item)
	q.Done(item)
	// Output:
	// len: 2
	// got: default/a
}

// Invalid options are reported together, each with its fix.
func ExampleNew_errors() {
	_, err := queue.New[string](queue.WithBucket(10, 0), queue.WithDrainTimeout(0))
	fmt.Println(err)
	// Output:
	// queue: WithBucket(10, 0): need qps > 0 and burst > 0; pass both, or both 0 to disable the bucket
	// queue: WithDrainTimeout(0s): must be > 0; omit it for the default
}

// Run reconciles items with workers, retries failures with backoff and drops
// an item after too many failures.
func ExampleQueue_Run() {
	q, err := queue.New[string](
		queue.WithBackoff(time.Millisecond, 10*time.Millisecond),
		queue.WithMaxRetries(2),
		queue.WithLogger(logr.Discard()),
		queue.WithOnDrop(func(item string, err error) { fmt.Println("dropped", item+":", err) }),
	)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tries := 0
	q.Add("flaky")
	err = q.Run(ctx, 1, func(ctx context.Context, item string) (queue.Result, error) {
		tries++
		fmt.Println("reconcile", item, "try", tries)
		if tries == 3 {
			cancel() // stop the example once the item is dropped
		}
		return queue.Result{}, errors.New("not yet")
	})
	fmt.Println("Run:", err)
	// Output:
	// reconcile flaky try 1
	// reconcile flaky try 2
	// reconcile flaky try 3
	// dropped flaky: not yet
	// Run: <nil>
}

// A reconcile can ask to run again later without counting as a failure.
func ExampleRequeueAfter() {
	q, err := queue.New[string]()
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	polls := 0
	q.Add("poll")
	_ = q.Run(ctx, 1, func(ctx context.Context, item string) (queue.Result, error) {
		polls++
		fmt.Println(item, polls)
		if polls == 2 {
			cancel()
			return queue.Result{}, nil
		}
		return queue.RequeueAfter(10 * time.Millisecond)
	})
	// Output:
	// poll 1
	// poll 2
}
