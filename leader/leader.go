package leader

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

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
//     as soon as the renew deadline passes, which is before another candidate
//     can acquire the Lease if fn stops promptly; Run waits for fn and returns
//     an error wrapping ErrLeadershipLost (and fn's error, if any).
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
	r := &run{log: log, fn: fn, userCtx: ctx, fnDone: make(chan struct{})}

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
		log: log,
		onForbidden: func(verb string, err error) {
			r.fail(fmt.Errorf("leader: %w %s/%s (%s: %v): grant get, create and update on leases.coordination.k8s.io in namespace %s to this client's user (a Role and RoleBinding)",
				ErrForbidden, namespace, name, verb, err, namespace))
		},
	}
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
	if started {
		<-r.fnDone
		r.mu.Lock()
		stopped = r.stopped
		r.mu.Unlock()
	}
	switch {
	case fatal != nil:
		return fatal
	case started && !stopped:
		log.Info("stopped leading: the Lease could not be renewed within the renew deadline")
		lost := fmt.Errorf("leader: %w: Lease %s/%s not renewed by %s within %s", ErrLeadershipLost, namespace, name, o.identity, o.renewDeadline)
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
}

// lead runs fn; client-go calls it on a goroutine of its own with a context
// that is cancelled when leadership is lost.
func (r *run) lead(leadCtx context.Context) {
	r.mu.Lock()
	r.leading = true
	stopping := r.stopping
	r.mu.Unlock()
	r.log.Info("started leading")
	fnCtx, cancel := context.WithCancel(leadCtx)
	stop := context.AfterFunc(r.userCtx, cancel)
	if stopping {
		cancel()
	}
	err := r.call(fnCtx)
	stop()
	cancel()
	r.mu.Lock()
	r.fnErr = err
	if leadCtx.Err() == nil {
		// fn returned or ctx was cancelled while the Lease was still held:
		// a stop on purpose, so release (the elector does on its way out).
		r.stopped = true
	}
	r.mu.Unlock()
	close(r.fnDone)
	r.stopElect()
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
	log         logr.Logger

	mu         sync.Mutex
	lastHolder string // holder in the last record Get read
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
	}
	return rec, raw, l.check("get", err)
}

func (l *guardedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	return l.check("create", l.Interface.Create(ctx, ler))
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
	return l.check("update", l.Interface.Update(ctx, ler))
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
