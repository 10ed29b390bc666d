// Command workqueue walks through client-go's three work queue kinds with
// kubekit's queue package, like the workqueue section of the client-go
// tutorial, printing one line per add and get:
//
//	go run ./examples/workqueue                  # all three demos, about 1s
//	go run ./examples/workqueue --demo delaying
//
// Each line starts with the wall-clock time and the time since the demo
// started, so the delays and the token-bucket pacing are visible:
//
//	02:50:01.412 +0.201s delaying get 1 len=0
//
// It needs no cluster.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/kubekit/kubekit/queue"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, pflag.ErrHelp) {
		return // --help: usage was printed, exit 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "workqueue:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("workqueue", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	demo := fs.String("demo", "all", "which demo to run: plain, delaying, ratelimited or all")
	unit := fs.Duration("delay", 200*time.Millisecond, "delaying demo: item i is added after i times this")
	qps := fs.Float64("qps", 20, "rate-limited demo: token bucket refill rate (tokens per second)")
	burst := fs.Int("burst", 5, "rate-limited demo: token bucket size")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *unit <= 0 {
		return fmt.Errorf("--delay=%v: must be > 0", *unit)
	}
	demos := map[string]func(context.Context, *printer) error{
		"plain":       plain,
		"delaying":    func(ctx context.Context, p *printer) error { return delaying(ctx, p, *unit) },
		"ratelimited": func(ctx context.Context, p *printer) error { return rateLimited(ctx, p, *qps, *burst) },
	}
	order := []string{"plain", "delaying", "ratelimited"}
	if *demo != "all" {
		if demos[*demo] == nil {
			return fmt.Errorf("--demo=%q: want plain, delaying, ratelimited or all", *demo)
		}
		order = []string{*demo}
	}
	for _, name := range order {
		p := &printer{w: stdout, demo: name, start: time.Now()}
		if err := demos[name](ctx, p); err != nil {
			return fmt.Errorf("%s demo: %w", name, err)
		}
	}
	return nil
}

type printer struct {
	w     io.Writer
	demo  string
	start time.Time
}

func (p *printer) printf(format string, args ...any) {
	now := time.Now()
	fmt.Fprintf(p.w, "%s +%.3fs %s %s\n", now.Format("15:04:05.000"), now.Sub(p.start).Seconds(), p.demo, fmt.Sprintf(format, args...))
}

// newQueue builds a queue that shuts down when ctx is cancelled, so a Get
// never blocks past Ctrl-C.
func newQueue(ctx context.Context, opts ...queue.Option) (*queue.Queue[int], func(), error) {
	q, err := queue.New[int](opts...)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, q.ShutDown)
	return q, func() { stop(); q.ShutDown() }, nil
}

// getAll gets n items (marking each Done), then shuts the queue down and
// shows that Get returns shutdown=true instead of blocking forever.
func getAll(ctx context.Context, p *printer, q *queue.Queue[int], n int) error {
	for range n {
		item, shutdown := q.Get()
		if shutdown {
			return ctx.Err()
		}
		q.Done(item)
		p.printf("get %d len=%d", item, q.Len())
	}
	q.ShutDown()
	_, shutdown := q.Get()
	p.printf("get after ShutDown: shutdown=%t", shutdown)
	return nil
}

// plain: FIFO order, duplicates merged while they wait.
func plain(ctx context.Context, p *printer) error {
	q, stop, err := newQueue(ctx)
	if err != nil {
		return err
	}
	defer stop()
	for _, i := range []int{1, 2, 3, 4, 5, 3} {
		q.Add(i)
		p.printf("add %d len=%d", i, q.Len())
	}
	return getAll(ctx, p, q, 5)
}

// delaying: item i becomes ready i*unit after it was added, whatever the
// order of the adds.
func delaying(ctx context.Context, p *printer, unit time.Duration) error {
	q, stop, err := newQueue(ctx)
	if err != nil {
		return err
	}
	defer stop()
	for _, i := range []int{3, 1, 2} {
		q.AddAfter(i, time.Duration(i)*unit)
		p.printf("add %d after %v len=%d", i, time.Duration(i)*unit, q.Len())
	}
	return getAll(ctx, p, q, 3)
}

// rateLimited: a token bucket lets burst items through at once, then qps per
// second.
func rateLimited(ctx context.Context, p *printer, qps float64, burst int) error {
	// The per-item backoff (default 5ms) would hide nothing here, but set it
	// tiny so only the bucket shows.
	q, stop, err := newQueue(ctx, queue.WithBucket(qps, burst), queue.WithBackoff(time.Microsecond, time.Microsecond))
	if err != nil {
		return err
	}
	defer stop()
	const n = 10
	for i := 1; i <= n; i++ {
		q.AddRateLimited(i)
		p.printf("add %d rate-limited len=%d", i, q.Len())
	}
	return getAll(ctx, p, q, n)
}
