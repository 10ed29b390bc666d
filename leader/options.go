package leader

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/klog/v2"
)

// Option configures [Run].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	identity        string
	leaseDuration   time.Duration
	renewDeadline   time.Duration
	retryPeriod     time.Duration
	releaseOnCancel bool
	log             logr.Logger
	logSet          bool
	onNewLeader     func(identity string)
}

// The defaults are client-go's and kube-controller-manager's.
const (
	// DefaultLeaseDuration is how long a Lease is valid after its last renewal.
	DefaultLeaseDuration = 15 * time.Second
	// DefaultRenewDeadline is how long the leader keeps trying to renew before
	// it gives up leading.
	DefaultRenewDeadline = 10 * time.Second
	// DefaultRetryPeriod is the time between tries to acquire or renew.
	DefaultRetryPeriod = 2 * time.Second
)

func defaultOptions() options {
	return options{
		identity:        DefaultIdentity(),
		leaseDuration:   DefaultLeaseDuration,
		renewDeadline:   DefaultRenewDeadline,
		retryPeriod:     DefaultRetryPeriod,
		releaseOnCancel: true,
	}
}

// WithIdentity sets this candidate's identity, written as the Lease's
// holderIdentity while it leads. Every replica needs a different one. Default:
// the hostname (in a Pod, its name), "_", and a random 8-character suffix, so a
// restarted process never takes the Lease for the one it replaced.
func WithIdentity(id string) Option { return optionFunc(func(o *options) { o.identity = id }) }

// WithLeaseDuration sets how long the Lease is valid after the leader last
// renewed it: how long a candidate waits before it takes over from a leader
// that stopped renewing (crashed, partitioned, paused). Default 15s. It must be
// longer than the renew deadline.
func WithLeaseDuration(d time.Duration) Option {
	return optionFunc(func(o *options) { o.leaseDuration = d })
}

// WithRenewDeadline sets how long the leader keeps retrying to renew before it
// gives up: at that moment fn's context is cancelled, which is before any
// other candidate can acquire the Lease (the lease duration is longer).
// Default 10s. It must be longer than 1.2 times the retry period.
func WithRenewDeadline(d time.Duration) Option {
	return optionFunc(func(o *options) { o.renewDeadline = d })
}

// WithRetryPeriod sets the time between tries to acquire or renew the Lease
// (jittered by up to 20% while acquiring). Default 2s.
func WithRetryPeriod(d time.Duration) Option {
	return optionFunc(func(o *options) { o.retryPeriod = d })
}

// WithReleaseOnCancel says whether a leader releases the Lease when it stops
// on purpose (ctx cancelled, or fn returned), after fn has returned. Default
// true: a clean stop hands over at once instead of after the lease duration.
func WithReleaseOnCancel(release bool) Option {
	return optionFunc(func(o *options) { o.releaseOnCancel = release })
}

// WithLogger sets the logger for leadership changes and Lease errors (client-go's
// elector logs through it too). Default: klog.Background(), which
// logging.RouteKlog captures.
func WithLogger(l logr.Logger) Option {
	return optionFunc(func(o *options) { o.log = l; o.logSet = true })
}

// WithOnNewLeader calls fn (on a goroutine of its own) each time a different
// leader is observed, this candidate included, with the leader's identity.
// Default: none.
func WithOnNewLeader(fn func(identity string)) Option {
	return optionFunc(func(o *options) { o.onNewLeader = fn })
}

// DefaultIdentity returns the identity [Run] uses without [WithIdentity]: the
// hostname, "_", and a random 8-character suffix.
func DefaultIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return host + "_" + rand.String(8)
}

func (o *options) validate() error {
	var errs []error
	if strings.TrimSpace(o.identity) == "" {
		errs = append(errs, fmt.Errorf("leader: WithIdentity(%q): the identity must not be empty; leave the option out for the default (hostname and a random suffix)", o.identity))
	}
	for _, d := range []struct {
		name     string
		v, deflt time.Duration
	}{{"WithLeaseDuration", o.leaseDuration, DefaultLeaseDuration}, {"WithRenewDeadline", o.renewDeadline, DefaultRenewDeadline}, {"WithRetryPeriod", o.retryPeriod, DefaultRetryPeriod}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("leader: %s(%s): must be positive; omit it for %s", d.name, d.v, d.deflt))
		}
	}
	if o.leaseDuration > 0 && o.renewDeadline > 0 && o.leaseDuration <= o.renewDeadline {
		errs = append(errs, fmt.Errorf("leader: WithLeaseDuration(%s): must be longer than WithRenewDeadline(%s), a leader must give up before another candidate may take over; raise the lease duration or lower the deadline (defaults %s and %s)",
			o.leaseDuration, o.renewDeadline, DefaultLeaseDuration, DefaultRenewDeadline))
	}
	if o.renewDeadline > 0 && o.retryPeriod > 0 && o.renewDeadline <= time.Duration(leaderelection.JitterFactor*float64(o.retryPeriod)) {
		errs = append(errs, fmt.Errorf("leader: WithRenewDeadline(%s): must be longer than %.1f x WithRetryPeriod(%s), or a single slow retry loses the lead; raise the deadline or lower the retry period (defaults %s and %s)",
			o.renewDeadline, leaderelection.JitterFactor, o.retryPeriod, DefaultRenewDeadline, DefaultRetryPeriod))
	}
	return errors.Join(errs...)
}

func validateLeaseName(namespace, name string) error {
	var errs []error
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("leader: namespace %q of the Lease: %s", namespace, strings.Join(msgs, "; ")))
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("leader: Lease name %q: %s", name, strings.Join(msgs, "; ")))
	}
	return errors.Join(errs...)
}

func (o *options) logger() logr.Logger {
	if o.logSet {
		return o.log
	}
	return klog.Background()
}
