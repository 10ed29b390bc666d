package leader_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/leader"
)

// Short timings, still with room for a slow, shared CI machine.
func fast(id string) []leader.Option {
	return []leader.Option{
		leader.WithIdentity(id),
		leader.WithLeaseDuration(4 * time.Second),
		leader.WithRenewDeadline(3 * time.Second),
		leader.WithRetryPeriod(250 * time.Millisecond),
	}
}

func getLease(t *testing.T, c *client.Client, name string) *coordinationv1.Lease {
	t.Helper()
	l, err := c.Kubernetes().CoordinationV1().Leases("default").Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// candidate runs leader.Run on a goroutine and reports when it leads and
// what Run returned.
type candidate struct {
	leading chan struct{}
	fnDone  chan error // what fn's ctx said when fn was stopped
	done    chan struct{}
	err     error // what Run returned, once done is closed
	cancel  context.CancelFunc
}

// result waits up to d for Run to return and gives its error.
func (cd *candidate) result(t *testing.T, d time.Duration) error {
	t.Helper()
	waitFor(t, cd.done, d, "Run to return")
	return cd.err
}

func startCandidate(t *testing.T, c *client.Client, lease, id string, extra ...leader.Option) *candidate {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cd := &candidate{leading: make(chan struct{}), fnDone: make(chan error, 1), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(cd.done)
		cd.err = leader.Run(ctx, c, "default", lease, func(ctx context.Context) error {
			close(cd.leading)
			<-ctx.Done()
			cd.fnDone <- ctx.Err()
			return ctx.Err()
		}, append(fast(id), extra...)...)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-cd.done:
		case <-time.After(30 * time.Second):
			t.Errorf("candidate %s: Run did not return 30s after cancel", id)
		}
	})
	return cd
}

func waitFor[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out after %s waiting for %s", d, what)
		panic("unreachable")
	}
}

func TestLeadAndReleaseOnCancel(t *testing.T) {
	c := newClient(t, "")
	verifyNoLeaks(t, c)
	a := startCandidate(t, c, "release-on-cancel", "replica-a")
	waitFor(t, a.leading, 20*time.Second, "replica-a to lead")
	if got := ptr.Deref(getLease(t, c, "release-on-cancel").Spec.HolderIdentity, ""); got != "replica-a" {
		t.Fatalf("holder = %q, want replica-a", got)
	}
	b := startCandidate(t, c, "release-on-cancel", "replica-b")
	select {
	case <-b.leading:
		t.Fatal("replica-b leads while replica-a holds the Lease")
	case <-time.After(time.Second):
	}

	start := time.Now()
	a.cancel()
	if err := a.result(t, 20*time.Second); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	waitFor(t, b.leading, 20*time.Second, "replica-b to take over")
	// Released on cancel: replica-b takes over after a retry period or two,
	// not after the 4s lease duration.
	if took := time.Since(start); took >= 4*time.Second {
		t.Fatalf("takeover took %s, want less than the lease duration (the Lease was not released)", took)
	} else {
		t.Logf("takeover after a clean stop: %s", took)
	}
	if got := ptr.Deref(getLease(t, c, "release-on-cancel").Spec.HolderIdentity, ""); got != "replica-b" {
		t.Fatalf("holder = %q, want replica-b", got)
	}
}

func TestWithoutReleaseTakeoverWaitsForTheLease(t *testing.T) {
	c := newClient(t, "")
	verifyNoLeaks(t, c)
	a := startCandidate(t, c, "no-release", "replica-a", leader.WithReleaseOnCancel(false))
	waitFor(t, a.leading, 20*time.Second, "replica-a to lead")
	b := startCandidate(t, c, "no-release", "replica-b")
	start := time.Now()
	a.cancel()
	if err := a.result(t, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b.leading, 30*time.Second, "replica-b to take over")
	if took := time.Since(start); took < 3*time.Second {
		t.Fatalf("takeover after %s without release; want about the 4s lease duration", took)
	} else {
		t.Logf("takeover without release: %s (lease duration 4s)", took)
	}
}

func TestFnResultIsReturnedAndReleases(t *testing.T) {
	c := newClient(t, "")
	verifyNoLeaks(t, c)
	boom := errors.New("boom")
	err := leader.Run(t.Context(), c, "default", "fn-error", func(ctx context.Context) error { return boom }, fast("a")...)
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want fn's error", err)
	}
	if got := ptr.Deref(getLease(t, c, "fn-error").Spec.HolderIdentity, ""); got != "" {
		t.Fatalf("holder after fn returned = %q, want released", got)
	}
	if err := leader.Run(t.Context(), c, "default", "fn-error", func(ctx context.Context) error { return nil }, fast("b")...); err != nil {
		t.Fatalf("Run with fn returning nil = %v", err)
	}
	err = leader.Run(t.Context(), c, "default", "fn-error", func(ctx context.Context) error { panic("kaboom") }, fast("c")...)
	if err == nil || !strings.Contains(err.Error(), "kaboom") {
		t.Fatalf("Run with a panicking fn = %v, want an error naming the panic", err)
	}
}

// TestLeadershipLost has another writer take the Lease over: the leader
// cannot renew, its fn's ctx is cancelled within the renew deadline (before
// the thief's lease would even let a candidate in), and Run says so.
func TestLeadershipLost(t *testing.T) {
	c := newClient(t, "")
	verifyNoLeaks(t, c)
	a := startCandidate(t, c, "lost", "replica-a")
	waitFor(t, a.leading, 20*time.Second, "replica-a to lead")
	leases := c.Kubernetes().CoordinationV1().Leases("default")
	var stolen time.Time
	for {
		l := getLease(t, c, "lost")
		l.Spec.HolderIdentity = ptr.To("thief")
		l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		l.Spec.LeaseDurationSeconds = ptr.To[int32](60)
		if _, err := leases.Update(t.Context(), l, metav1.UpdateOptions{}); err == nil {
			stolen = time.Now()
			break
		}
	}
	if err := waitFor(t, a.fnDone, 20*time.Second, "fn's ctx to be cancelled"); !errors.Is(err, context.Canceled) {
		t.Fatalf("fn's ctx err = %v", err)
	}
	took := time.Since(stolen)
	t.Logf("fn cancelled %s after the Lease was taken", took)
	// The next renewal (every 250ms) reads the thief's record: fn stops then,
	// not a renew deadline (3s) later.
	if took > 2*time.Second {
		t.Fatalf("fn cancelled %s after the Lease was lost, want at the next renewal attempt (retry period 250ms)", took)
	}
	err := a.result(t, 20*time.Second)
	if !errors.Is(err, leader.ErrLeadershipLost) || !strings.Contains(err.Error(), "default/lost") || !strings.Contains(err.Error(), "held by thief") {
		t.Fatalf("Run = %v, want ErrLeadershipLost naming the Lease", err)
	}
	if got := ptr.Deref(getLease(t, c, "lost").Spec.HolderIdentity, ""); got != "thief" {
		t.Fatalf("holder = %q: the loser must not overwrite the new holder", got)
	}
}

func TestCancelWhileCampaigning(t *testing.T) {
	c := newClient(t, "")
	verifyNoLeaks(t, c)
	a := startCandidate(t, c, "campaign-cancel", "replica-a")
	waitFor(t, a.leading, 20*time.Second, "replica-a to lead")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	observed := make(chan string, 10)
	var ran bool
	go func() {
		done <- leader.Run(ctx, c, "default", "campaign-cancel", func(ctx context.Context) error { ran = true; return nil },
			append(fast("replica-b"), leader.WithOnNewLeader(func(id string) { observed <- id }))...)
	}()
	// replica-b has read the Lease and is campaigning against replica-a.
	if id := waitFor(t, observed, 10*time.Second, "replica-b to observe the leader"); id != "replica-a" {
		t.Fatalf("replica-b observed leader %q, want replica-a", id)
	}
	cancel()
	if err := waitFor(t, done, 10*time.Second, "Run to return after cancel"); err != nil || ran {
		t.Fatalf("Run = %v (fn ran: %v), want nil without running fn", err, ran)
	}
}

func TestForbiddenIsFatalAndNamesTheVerbs(t *testing.T) {
	c := newClient(t, "no-lease-rights")
	verifyNoLeaks(t, c)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := leader.Run(ctx, c, "default", "forbidden", func(ctx context.Context) error { return nil }, fast("a")...)
	if !errors.Is(err, leader.ErrForbidden) {
		t.Fatalf("Run = %v, want ErrForbidden", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run waited for the timeout instead of failing at once")
	}
	for _, want := range []string{"get, create and update", "leases.coordination.k8s.io", "default/forbidden"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestBadInput(t *testing.T) {
	c := newClient(t, "")
	fn := func(ctx context.Context) error { return nil }
	tests := []struct {
		name    string
		c       *client.Client
		ns, nm  string
		fn      func(context.Context) error
		opts    []leader.Option
		wantErr string
	}{
		{"nil client", nil, "default", "x", fn, nil, "client is nil"},
		{"nil fn", c, "default", "x", nil, nil, "fn is nil"},
		{"empty namespace", c, "", "x", fn, nil, `namespace "" of the Lease`},
		{"bad name", c, "default", "Not_A_Name", fn, nil, `Lease name "Not_A_Name"`},
		{"empty identity", c, "default", "x", fn, []leader.Option{leader.WithIdentity(" ")}, "WithIdentity"},
		{"lease not longer than renew", c, "default", "x", fn, []leader.Option{leader.WithLeaseDuration(10 * time.Second)}, "leader: WithLeaseDuration(10s): must be longer than WithRenewDeadline(10s)"},
		{"renew too close to retry", c, "default", "x", fn, []leader.Option{leader.WithRetryPeriod(9 * time.Second)}, "leader: WithRenewDeadline(10s): must be longer than 1.2 x WithRetryPeriod(9s)"},
		{"zero retry", c, "default", "x", fn, []leader.Option{leader.WithRetryPeriod(0)}, "WithRetryPeriod(0s): must be positive"},
		{"negative lease", c, "default", "x", fn, []leader.Option{leader.WithLeaseDuration(-time.Second)}, "WithLeaseDuration(-1s): must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- leader.Run(t.Context(), tt.c, tt.ns, tt.nm, tt.fn, tt.opts...) }()
			err := waitFor(t, done, 5*time.Second, "Run to reject the input")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestOnNewLeaderAndDefaultIdentity(t *testing.T) {
	c := newClient(t, "")
	verifyNoLeaks(t, c)
	a, b := leader.DefaultIdentity(), leader.DefaultIdentity()
	if a == b || !strings.Contains(a, "_") {
		t.Fatalf("DefaultIdentity() = %q, %q: want hostname_suffix, different each time", a, b)
	}
	var mu sync.Mutex
	var seen []string
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	err := leader.Run(ctx, c, "default", "observed", func(ctx context.Context) error {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			n := len(seen)
			mu.Unlock()
			if n > 0 {
				return nil
			}
			time.Sleep(20 * time.Millisecond)
		}
		return fmt.Errorf("no leader observed")
	}, append(fast("observer"), leader.WithOnNewLeader(func(id string) {
		mu.Lock()
		seen = append(seen, id)
		mu.Unlock()
	}))...)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen[0] != "observer" {
		t.Fatalf("OnNewLeader saw %v, want observer", seen)
	}
}

// TestStopAfterLossKeepsTheNewHolder: the Lease is taken over and, before
// the leader's renew deadline has passed (so client-go still believes it
// leads), fn returns by itself. The release on the way out must not clear
// the new holder's Lease (client-go's release checks its old view).
func TestStopAfterLossKeepsTheNewHolder(t *testing.T) {
	c := newClient(t, "")
	verifyNoLeaks(t, c)
	leading, finish := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- leader.Run(t.Context(), c, "default", "stale-release", func(ctx context.Context) error {
			close(leading)
			select {
			case <-finish:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, append(fast("replica-a"), leader.WithRenewDeadline(3*time.Second))...)
	}()
	waitFor(t, leading, 20*time.Second, "replica-a to lead")
	leases := c.Kubernetes().CoordinationV1().Leases("default")
	for {
		l := getLease(t, c, "stale-release")
		l.Spec.HolderIdentity = ptr.To("thief")
		l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		l.Spec.LeaseDurationSeconds = ptr.To[int32](60)
		if _, err := leases.Update(t.Context(), l, metav1.UpdateOptions{}); err == nil {
			break
		}
	}
	close(finish) // fn stops by itself well within the renew deadline
	if err := waitFor(t, done, 20*time.Second, "Run to return"); err != nil {
		t.Logf("Run = %v", err)
	}
	if got := ptr.Deref(getLease(t, c, "stale-release").Spec.HolderIdentity, ""); got != "thief" {
		t.Fatalf("holder after the old leader stopped = %q: its release cleared the new holder's Lease", got)
	}
}

// stallingTransport makes every request hang until its context ends once
// stalled is set: an API server that stopped answering.
type stallingTransport struct {
	rt      http.RoundTripper
	stalled atomic.Bool
}

func (s *stallingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if s.stalled.Load() {
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	return s.rt.RoundTrip(req)
}

// TestStalledRenewalStopsFn: when renewals stop getting through, fn's ctx is
// cancelled once the last successful renewal is older than the renew
// deadline, and Run says the leadership was lost and why.
func TestStalledRenewalStopsFn(t *testing.T) {
	st := &stallingTransport{}
	cfg := env.Config()
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { st.rt = rt; return st })
	c, err := client.New(client.WithRESTConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cd := startCandidate(t, c, "stalled", "replica-a")
	waitFor(t, cd.leading, 20*time.Second, "replica-a to lead")
	stalled := time.Now()
	st.stalled.Store(true)
	if err := waitFor(t, cd.fnDone, 20*time.Second, "fn's ctx to be cancelled"); !errors.Is(err, context.Canceled) {
		t.Fatalf("fn's ctx err = %v", err)
	}
	took := time.Since(stalled)
	t.Logf("fn cancelled %s after renewals stalled (renew deadline 3s)", took)
	if took > 3*time.Second+time.Second {
		t.Fatalf("fn cancelled %s after renewals stalled, want within the renew deadline (3s) of the last renewal", took)
	}
	err = cd.result(t, 20*time.Second)
	if !errors.Is(err, leader.ErrLeadershipLost) || !strings.Contains(err.Error(), "not renewed") {
		t.Fatalf("Run = %v, want ErrLeadershipLost saying it was not renewed", err)
	}
}

// TestLeading: true in fn while the Lease is held, false once another
// holder was read, and false outside fn.
func TestLeading(t *testing.T) {
	c := newClient(t, "")
	verifyNoLeaks(t, c)
	if leader.Leading(t.Context()) {
		t.Fatal("Leading outside fn = true")
	}
	leading := make(chan bool, 2)
	done := make(chan error, 1)
	go func() {
		done <- leader.Run(t.Context(), c, "default", "leading", func(ctx context.Context) error {
			leading <- leader.Leading(ctx)
			<-ctx.Done()
			leading <- leader.Leading(ctx)
			return nil
		}, fast("replica-a")...)
	}()
	if !waitFor(t, leading, 20*time.Second, "fn to start") {
		t.Fatal("Leading in fn right after acquiring = false")
	}
	leases := c.Kubernetes().CoordinationV1().Leases("default")
	for {
		l := getLease(t, c, "leading")
		l.Spec.HolderIdentity = ptr.To("thief")
		l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		l.Spec.LeaseDurationSeconds = ptr.To[int32](60)
		if _, err := leases.Update(t.Context(), l, metav1.UpdateOptions{}); err == nil {
			break
		}
	}
	if waitFor(t, leading, 20*time.Second, "fn to be stopped") {
		t.Fatal("Leading after another holder took the Lease = true")
	}
	if err := waitFor(t, done, 20*time.Second, "Run to return"); !errors.Is(err, leader.ErrLeadershipLost) {
		t.Fatalf("Run = %v, want ErrLeadershipLost", err)
	}
}
