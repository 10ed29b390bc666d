package watch

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/kubekit/kubekit/client"
)

// Defaults applied by [New] and [NewForResource].
const (
	// DefaultCheckpointEvents is how many handled events trigger a checkpoint save.
	DefaultCheckpointEvents = 1000
	// DefaultCheckpointInterval is how long handled events may wait for a save.
	DefaultCheckpointInterval = time.Second
	// DefaultHealthyPeriod is how long a watch stream must stay up before the
	// reconnect backoff starts over.
	DefaultHealthyPeriod = 5 * time.Second
	// DefaultHandlerRetries is how many times a failing event is retried.
	DefaultHandlerRetries = 5
	// DefaultPageSize is the page size of the (re-)list: client's.
	DefaultPageSize = client.DefaultPageSize
	// DefaultSaveRetryTimeout is how long checkpoint saves may keep failing
	// before Run gives up.
	DefaultSaveRetryTimeout = 2 * time.Minute
)

// DefaultBackoff is the reconnect backoff: 200ms doubling up to 30s, each
// delay plus up to 50% random jitter.
func DefaultBackoff() wait.Backoff {
	return wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: 1 << 30, Cap: 30 * time.Second}
}

// DefaultHandlerBackoff is the backoff between handler retries: 100ms
// doubling up to 10s, plus up to 20% jitter.
func DefaultHandlerBackoff() wait.Backoff {
	return wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 1 << 30, Cap: 10 * time.Second}
}

// Option configures [New] and [NewForResource]. Options may be given in any
// order; they are validated together after the defaults are applied.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	namespace          string
	labelSelector      string
	fieldSelector      string
	checkpoint         Checkpoint
	initialEvents      bool
	backoff            wait.Backoff
	healthy            time.Duration
	gapRecovery        bool
	checkpointEvents   int
	checkpointInterval time.Duration
	handlerRetries     int
	handlerBackoff     wait.Backoff
	resetBadCheckpoint bool
	pageSize           int64
	saveRetryTimeout   time.Duration
	logger             logr.Logger
	metrics            Metrics
	maxPending         int // not an option: tests lower it
}

func defaultOptions() options {
	return options{
		checkpoint:         NewMemoryCheckpoint(),
		initialEvents:      true,
		backoff:            DefaultBackoff(),
		healthy:            DefaultHealthyPeriod,
		gapRecovery:        true,
		checkpointEvents:   DefaultCheckpointEvents,
		maxPending:         maxPending,
		checkpointInterval: DefaultCheckpointInterval,
		handlerRetries:     DefaultHandlerRetries,
		handlerBackoff:     DefaultHandlerBackoff(),
		pageSize:           DefaultPageSize,
		saveRetryTimeout:   DefaultSaveRetryTimeout,
		logger:             klog.Background(),
	}
}

// newOptions applies opts to the defaults and validates the result.
func newOptions(opts []Option) (options, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			return o, errors.New("watch: a nil Option; pass options from this package, e.g. WithNamespace")
		}
		opt.apply(&o)
	}
	return o, o.validate()
}

func (o *options) validate() error {
	var errs []error
	if o.namespace != "" {
		if msgs := validation.IsDNS1123Label(o.namespace); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("watch: WithNamespace(%q): not a valid namespace name: %s; use a DNS-1123 label such as \"shop\", or leave the option out for all namespaces", o.namespace, msgs[0]))
		}
	}
	if _, err := labels.Parse(o.labelSelector); err != nil {
		errs = append(errs, fmt.Errorf("watch: WithLabelSelector(%q): %w; use kubectl -l syntax, e.g. \"app=web,tier!=db\"", o.labelSelector, err))
	}
	if _, err := fields.ParseSelector(o.fieldSelector); err != nil {
		errs = append(errs, fmt.Errorf("watch: WithFieldSelector(%q): %w; use kubectl --field-selector syntax, e.g. \"metadata.name=web\"", o.fieldSelector, err))
	}
	if err := checkBackoff("WithBackoff", o.backoff); err != nil {
		errs = append(errs, err)
	}
	if err := checkBackoff("WithHandlerBackoff", o.handlerBackoff); err != nil {
		errs = append(errs, err)
	}
	if o.healthy <= 0 {
		errs = append(errs, fmt.Errorf("watch: WithHealthyPeriod(%v): must be positive; e.g. %v (the default)", o.healthy, DefaultHealthyPeriod))
	}
	if o.checkpointEvents < 1 || o.checkpointInterval <= 0 {
		errs = append(errs, fmt.Errorf("watch: WithCheckpointBatch(%d, %v): want at least 1 event and a positive interval; e.g. WithCheckpointBatch(%d, %v), the default", o.checkpointEvents, o.checkpointInterval, DefaultCheckpointEvents, DefaultCheckpointInterval))
	}
	if o.pageSize < 1 {
		errs = append(errs, fmt.Errorf("watch: WithPageSize(%d): must be at least 1; e.g. %d (the default, kubectl's --chunk-size)", o.pageSize, DefaultPageSize))
	}
	if o.checkpoint == nil {
		errs = append(errs, errors.New("watch: WithCheckpoint(nil): the checkpoint is nil; pass one, e.g. from NewFileCheckpoint(path), or leave the option out for an in-memory one"))
	} else if v := reflect.ValueOf(o.checkpoint); nilable(v.Kind()) && v.IsNil() {
		errs = append(errs, fmt.Errorf("watch: WithCheckpoint(%T(nil)): the checkpoint is a nil %T; pass one from its constructor, e.g. NewFileCheckpoint(path)", o.checkpoint, o.checkpoint))
	}
	if o.saveRetryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("watch: WithSaveRetryTimeout(%v): must be positive; e.g. %v", o.saveRetryTimeout, DefaultSaveRetryTimeout))
	}
	return errors.Join(errs...)
}

func nilable(k reflect.Kind) bool {
	switch k {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return true
	}
	return false
}

func checkBackoff(name string, b wait.Backoff) error {
	if b.Duration <= 0 || b.Factor < 1 || b.Jitter < 0 || b.Cap < 0 {
		return fmt.Errorf("watch: %s(%+v): want Duration > 0, Factor >= 1, Jitter >= 0 and Cap >= 0; start from DefaultBackoff()", name, b)
	}
	return nil
}

// WithNamespace watches one namespace. Default: all namespaces (or the
// cluster for cluster-scoped resources, where a namespace is an error).
func WithNamespace(ns string) Option { return optionFunc(func(o *options) { o.namespace = ns }) }

// WithLabelSelector filters by labels, e.g. "app=web,tier!=db". Default: none.
func WithLabelSelector(s string) Option {
	return optionFunc(func(o *options) { o.labelSelector = s })
}

// WithFieldSelector filters by fields, e.g. "metadata.name=x". Default: none.
func WithFieldSelector(s string) Option {
	return optionFunc(func(o *options) { o.fieldSelector = s })
}

// WithCheckpoint stores the watch's position (and what gap recovery needs)
// in cp, so a new process resumes where the last one stopped. Default: a
// [MemoryCheckpoint], which only lets a second Run of the same Watcher resume.
func WithCheckpoint(cp Checkpoint) Option { return optionFunc(func(o *options) { o.checkpoint = cp }) }

// WithInitialEvents says whether the objects of the initial list (made when
// there is no checkpoint) are delivered as ADDED events with Initial set.
// Default: true. With false the watch starts silently at "now".
func WithInitialEvents(deliver bool) Option {
	return optionFunc(func(o *options) { o.initialEvents = deliver })
}

// WithBackoff sets the reconnect backoff after a stream ends or fails
// (Duration: first delay, Factor: growth, Jitter: added random fraction,
// Cap: longest delay). Default: [DefaultBackoff].
func WithBackoff(b wait.Backoff) Option { return optionFunc(func(o *options) { o.backoff = b }) }

// WithHealthyPeriod sets how long a stream must stay up for the reconnect
// backoff to start over at its first step. Default: [DefaultHealthyPeriod].
func WithHealthyPeriod(d time.Duration) Option { return optionFunc(func(o *options) { o.healthy = d }) }

// WithGapRecovery says what happens when the resume point is gone (410
// Gone, after etcd compaction). true (the default): re-list and deliver
// synthetic events for what changed in the gap. false: Run returns an error
// matching [ErrExpired].
func WithGapRecovery(recover bool) Option {
	return optionFunc(func(o *options) { o.gapRecovery = recover })
}

// WithCheckpointBatch saves the checkpoint after every `events` handled
// events or `interval` after the first unsaved one, whichever comes first;
// always on a clean stop and on bookmarks. Default: [DefaultCheckpointEvents],
// [DefaultCheckpointInterval]. After a crash, at most one batch is delivered again.
func WithCheckpointBatch(events int, interval time.Duration) Option {
	return optionFunc(func(o *options) { o.checkpointEvents, o.checkpointInterval = events, interval })
}

// WithHandlerRetries sets how often an event whose handler returned an
// error is retried before Run gives up with a [*HandlerError]; negative
// means forever. Default: [DefaultHandlerRetries].
func WithHandlerRetries(n int) Option { return optionFunc(func(o *options) { o.handlerRetries = n }) }

// WithHandlerBackoff sets the delay between handler retries. Default:
// [DefaultHandlerBackoff].
func WithHandlerBackoff(b wait.Backoff) Option {
	return optionFunc(func(o *options) { o.handlerBackoff = b })
}

// WithResetBadCheckpoint says what Run does when the checkpoint cannot be
// read or is corrupt. false (the default): Run returns an error matching
// [ErrBadCheckpoint]. true: Run logs it and starts with a fresh list whose
// objects are delivered as synthetic ADDED events. A checkpoint of another
// watch ([ErrCheckpointMismatch]) is always an error.
func WithResetBadCheckpoint(reset bool) Option {
	return optionFunc(func(o *options) { o.resetBadCheckpoint = reset })
}

// WithPageSize sets the page size of lists. Default: [DefaultPageSize].
func WithPageSize(n int64) Option { return optionFunc(func(o *options) { o.pageSize = n }) }

// WithSaveRetryTimeout sets how long checkpoint saves may keep failing
// (each failure logged and retried with the [WithBackoff] delays) before Run
// stops with an error matching [ErrSaveFailed] that names the checkpoint.
// A state too large for its store fails at once. Default:
// [DefaultSaveRetryTimeout].
func WithSaveRetryTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.saveRetryTimeout = d })
}

// WithLogger sets the logger for retries, save failures and handler panics.
// Default: klog.Background(), so failures are visible by default (and
// logging.RouteKlog captures them).
func WithLogger(l logr.Logger) Option { return optionFunc(func(o *options) { o.logger = l }) }
