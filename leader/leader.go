package leader

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-logr/logr"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/kubekit/kubekit/client"
)

// ErrLeadershipLost is returned by [Run] when this process stopped leading
// without being asked to: it could not renew the Lease within the renew
// deadline (the API server was unreachable, or another candidate holds the
// Lease). fn's context was cancelled at that moment. A process that gets it
// usually exits so that a supervisor restarts it as a candidate.
var ErrLeadershipLost = errors.New("leadership lost")

// ErrForbidden is returned (wrapped, with the verbs needed) by [Run] when RBAC
// forbids this client to read or write the Lease. Retrying cannot fix it.
var ErrForbidden = errors.New("forbidden to use the Lease")

// Run campaigns for the Lease namespace/name (coordination.k8s.io/v1) and
// runs fn while this process leads. It blocks until one of these happens and
// reports it:
//
//   - ctx is cancelled: fn's context is cancelled too; once fn returned, the
//     Lease is released (see [WithReleaseOnCancel]) and Run returns nil (or
//     fn's error, if it was not a context error).
//   - fn returns: the Lease is released and Run returns fn's error (nil when
//     fn returned nil).
//   - leadership is lost (see [ErrLeadershipLost]): fn's context is cancelled
//     as soon as a read of the Lease names another holder, or once the Lease
//     has not been renewed for the renew deadline, counted from when the
//     last successful renewal was sent (so a process that wakes from a pause
//     stops at once, where client-go's elector would lead on for up to
//     another renew deadline). With the renew deadline shorter than the lease
//     duration that is before another candidate can acquire the Lease, if fn
//     stops promptly. Run waits for fn and returns an error wrapping
//     ErrLeadershipLost that says why (and fn's error, if any).
//   - RBAC forbids the Lease: Run returns an error wrapping [ErrForbidden]
//     that names the verbs to grant.
//
// fn must return soon after its context is done: Run waits for it. A panic
// in fn is recovered and returned as an error (with the stack in the log).
// Run is built on client-go's tools/leaderelection; a process that campaigns
// for several Leases calls Run once for each.
func Run(ctx context.Context, c *client.Client, namespace, name string, fn func(ctx context.Context) error, opts ...Option) error {
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	var errs []error
	if c == nil {
		errs = append(errs, errors.New("leader: Run: the client is nil; build one with client.New"))
	}
	if fn == nil {
		errs = append(errs, errors.New("leader: Run: fn is nil; pass the function to run while leading"))
	}
	errs = append(errs, validateLeaseName(namespace, name), o.validate())
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log := o.logger().WithValues("lease", namespace+"/"+name, "identity", o.identity)
	r := &run{log: log, fn: fn, userCtx: ctx, fnDone: make(chan struct{}), renewDeadline: o.renewDeadline, retryPeriod: o.retryPeriod}

	// The elector's context outlives ctx: when ctx is cancelled while leading,
	// the Lease stays renewed until fn has returned, and only then released.
	electCtx, stopElect := context.WithCancel(klog.NewContext(context.WithoutCancel(ctx), log))
	defer stopElect()
	r.stopElect = stopElect
	stopOnCancel := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.stopping = true
		if !r.leading {
			stopElect()
		}
	})
	defer stopOnCancel()

	lock := &guardedLock{
		Interface: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: namespace, Name: name},
			Client:     c.Kubernetes().CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: o.identity},
		},
		log:           log,
		onOtherHolder: func(holder string) { r.lose("the Lease is held by " + holder) },
		onForbidden: func(verb string, err error) {
			r.fail(fmt.Errorf("leader: %w %s/%s (%s: %v): grant get, create and update on leases.coordination.k8s.io in namespace %s to this client's user (a Role and RoleBinding)",
				ErrForbidden, namespace, name, verb, err, namespace))
		},
	}
	r.lock = lock
	el, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            namespace + "/" + name,
		LeaseDuration:   o.leaseDuration,
		RenewDeadline:   o.renewDeadline,
		RetryPeriod:     o.retryPeriod,
		ReleaseOnCancel: o.releaseOnCancel,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: r.lead,
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				log.Info("leader observed", "leader", id)
				if o.onNewLeader != nil {
					o.onNewLeader(id)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader: %w", err)
	}
	log.V(1).Info("campaigning")
	el.Run(electCtx)

	r.mu.Lock()
	started, stopped, fatal := r.leading, r.stopped, r.fatal
	r.mu.Unlock()
	lostWhy := ""
	if started {
		<-r.fnDone
		r.mu.Lock()
		stopped, lostWhy = r.stopped, r.lost
		r.mu.Unlock()
	}
	switch {
	case fatal != nil:
		return fatal
	case started && !stopped:
		if lostWhy == "" {
			lostWhy = fmt.Sprintf("not renewed within the renew deadline %s", o.renewDeadline)
		}
		log.Info("stopped leading: the Lease is lost", "reason", lostWhy)
		lost := fmt.Errorf("leader: %w: Lease %s/%s of %s: %s", ErrLeadershipLost, namespace, name, o.identity, lostWhy)
		if r.fnErr != nil && !isContextErr(r.fnErr) {
			return errors.Join(lost, r.fnErr)
		}
		return lost
	case started:
		log.Info("stopped leading")
		if r.fnErr != nil && !(ctx.Err() != nil && isContextErr(r.fnErr)) {
			return r.fnErr
		}
		return nil
	}
	return nil
}

// run is the state of one Run shared with client-go's callbacks.
type run struct {
	log       logr.Logger
	fn        func(context.Context) error
	userCtx   context.Context
	stopElect context.CancelFunc

	mu       sync.Mutex
	leading  bool  // fn was started
	stopping bool  // ctx was cancelled
	stopped  bool  // Run stopped the elector on purpose (fn returned, ctx cancelled)
	fatal    error // the elector was stopped for an error retrying cannot fix
	fnErr    error
	fnDone   chan struct{}
	cancelFn context.CancelFunc // cancels fn's context while it runs
	lost     string             // why fn was stopped for a lost Lease, "" if it was not

	lock          *guardedLock
	renewDeadline time.Duration
	retryPeriod   time.Duration
}

// lead runs fn; client-go calls it on a goroutine of its own with a context
// that is cancelled when leadership is lost.
func (r *run) lead(leadCtx context.Context) {
	r.mu.Lock()
	r.leading = true
	stopping := r.stopping
	r.mu.Unlock()
	r.log.Info("started leading")
	fnCtx, cancel := context.WithCancel(context.WithValue(leadCtx, leadingKey{}, r))
	r.mu.Lock()
	r.cancelFn = cancel
	r.mu.Unlock()
	stop := context.AfterFunc(r.userCtx, cancel)
	if stopping {
		cancel()
	}
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		r.watchdog(fnCtx)
	}()
	err := r.call(fnCtx)
	stop()
	cancel()
	<-watched
	r.mu.Lock()
	r.fnErr = err
	r.cancelFn = nil
	if leadCtx.Err() == nil && r.lost == "" {
		// fn returned or ctx was cancelled while the Lease was still held:
		// a stop on purpose, so release (the elector does on its way out).
		r.stopped = true
	}
	r.mu.Unlock()
	close(r.fnDone)
	r.stopElect()
}

// watchdog stops fn once the Lease has not been renewed for the renew
// deadline, measured from when the last successful renewal was sent. That is
// the renew deadline's promise (the leader gives up before another candidate
// may take over); client-go's elector measures it from the start of its
// current renew attempt instead, which a process that wakes from a pause
// (SIGSTOP, a long GC) starts anew, leading on for up to another renew
// deadline while another replica already holds the Lease.
func (r *run) watchdog(ctx context.Context) {
	t := time.NewTicker(min(r.retryPeriod/4, 250*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if d := r.lock.sinceRenewed(); d > r.renewDeadline {
				r.lose(fmt.Sprintf("not renewed for %s, longer than the renew deadline %s", d.Round(time.Millisecond), r.renewDeadline))
				return
			}
		}
	}
}

// leadingKey keys the run in fn's context, for [Leading].
type leadingKey struct{}

// Leading reports, without a request, whether the Lease is still this
// process's: ctx is fn's context (or one derived from it, cancelled or not)
// and the last successful renewal was sent less than the renew deadline
// ago, and no read of the Lease named another holder. Another candidate may
// take the Lease only a lease duration after that renewal, so an action
// done while Leading is true comes from one replica only, even right after
// this process woke from a pause that its context has not caught up with
// yet. Call it right before such an action (printing, sending); writes that
// can be fenced by a resourceVersion should still be. Outside fn it is
// false.
func Leading(ctx context.Context) bool {
	r, ok := ctx.Value(leadingKey{}).(*run)
	if !ok {
		return false
	}
	r.mu.Lock()
	lost := r.lost != ""
	r.mu.Unlock()
	return !lost && r.lock.sinceRenewed() < r.renewDeadline
}

// lose stops fn because the Lease is lost (another holder was read, or the
// renew deadline passed).
func (r *run) lose(why string) {
	r.mu.Lock()
	cancel := r.cancelFn
	if cancel == nil || r.lost != "" {
		r.mu.Unlock()
		return
	}
	r.lost = why
	r.mu.Unlock()
	r.log.Info("stopping fn: the Lease is lost", "reason", why)
	cancel()
}

func (r *run) call(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error(nil, "fn panicked while leading", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("leader: fn panicked: %v", p)
		}
	}()
	return r.fn(ctx)
}

func (r *run) fail(err error) {
	r.mu.Lock()
	if r.fatal == nil {
		r.fatal = err
		r.stopped = true
	}
	r.mu.Unlock()
	r.log.Error(err, "giving up the campaign")
	r.stopElect()
}

// guardedLock turns a Forbidden answer, which client-go's elector would log
// and retry forever, into a fatal error, and keeps a release from clearing
// another candidate's Lease: client-go's release re-reads the Lease but
// decides whether it still holds it from the record it observed before (a
// process paused past its Lease that wakes and stops would clear the new
// leader's Lease).
type guardedLock struct {
	resourcelock.Interface
	onForbidden func(verb string, err error)
	// onOtherHolder is called when a record read names another holder.
	onOtherHolder func(holder string)
	log           logr.Logger

	mu         sync.Mutex
	lastHolder string    // holder in the last record Get read
	renewed    time.Time // when the last write naming this candidate that succeeded was sent
}

func (l *guardedLock) check(verb string, err error) error {
	if apierrors.IsForbidden(err) {
		l.onForbidden(verb, err)
	}
	return err
}

func (l *guardedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.Interface.Get(ctx)
	if err == nil && rec != nil {
		l.mu.Lock()
		l.lastHolder = rec.HolderIdentity
		l.mu.Unlock()
		if h := rec.HolderIdentity; h != "" && h != l.Identity() && l.onOtherHolder != nil {
			l.onOtherHolder(h)
		}
	}
	return rec, raw, l.check("get", err)
}

func (l *guardedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	sent := time.Now()
	err := l.Interface.Create(ctx, ler)
	l.wrote(ler, sent, err)
	return l.check("create", err)
}

// wrote records when a successful write naming this candidate was sent: the
// Lease is this candidate's for a lease duration from then, at least.
func (l *guardedLock) wrote(ler resourcelock.LeaderElectionRecord, sent time.Time, err error) {
	if err == nil && ler.HolderIdentity == l.Identity() {
		l.mu.Lock()
		l.renewed = sent
		l.mu.Unlock()
	}
}

// sinceRenewed is how long ago the last successful renewal was sent.
func (l *guardedLock) sinceRenewed() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Since(l.renewed)
}

func (l *guardedLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	if ler.HolderIdentity == "" { // a release: only by the holder of the record just read
		l.mu.Lock()
		holder := l.lastHolder
		l.mu.Unlock()
		if holder != l.Identity() {
			l.log.Info("not releasing the Lease: another candidate holds it now", "holder", holder)
			return nil
		}
	}
	sent := time.Now()
	err := l.Interface.Update(ctx, ler)
	l.wrote(ler, sent, err)
	return l.check("update", err)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
