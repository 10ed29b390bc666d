package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/reference"
)

// EventRecorder writes events.k8s.io/v1 Events about objects, the way
// client-go's tools/events recorder does (same Event names, fields and
// series of repeats), with one difference that matters for programs that
// stop cleanly: every event is written by one goroutine the recorder owns,
// and [EventRecorder.Shutdown] waits until the queued events are written
// and that goroutine has returned. (client-go's broadcaster starts a
// goroutine per event that nothing can wait for, so events recorded just
// before exit are often lost.)
//
// It implements client-go's events.EventRecorder, so it can be passed to
// code written against that interface. Build it with
// [Client.StartEventRecorder].
type EventRecorder struct {
	c          *Client
	scheme     *runtime.Scheme
	controller string
	instance   string
	log        logr.Logger
	backoff    wait.Backoff

	queue chan *eventsv1.Event
	mu    sync.Mutex // guards closed and the send on queue
	// closed is set by Shutdown; Eventf drops events afterwards.
	closed      bool
	queueClosed bool
	stop        context.CancelFunc // stops writing (ctx of StartEventRecorder or Shutdown's deadline)
	done        chan struct{}      // closed when the writer returned
	dropped     int                // events the writer did not write; read after done
	series      map[seriesKey]*eventsv1.Event
}

// seriesKey identifies isomorphic events (client-go's eventKey): a repeat
// of one within [eventSeriesWindow] updates the first one's series.
type seriesKey struct {
	typ, action, reason, controller, instance, note string
	regarding, related                              corev1.ObjectReference
}

const (
	// DefaultEventQueueSize is how many events wait to be written before
	// Eventf drops new ones (client-go's broadcaster queues 1,000 too).
	DefaultEventQueueSize = 1000
	// eventSeriesWindow is how long a repeat joins the first event's series
	// (client-go's finishTime).
	eventSeriesWindow = 6 * time.Minute
)

// EventOption configures [Client.StartEventRecorder].
type EventOption interface{ applyEvent(*eventOptions) }

type eventOptionFunc func(*eventOptions)

func (f eventOptionFunc) applyEvent(o *eventOptions) { f(o) }

type eventOptions struct {
	instance  string
	scheme    *runtime.Scheme
	queueSize int
	backoff   wait.Backoff
}

// WithEventInstance sets reportingInstance, the replica that reports.
// Default: "<controller>-<hostname>", as client-go's recorder.
func WithEventInstance(id string) EventOption {
	return eventOptionFunc(func(o *eventOptions) { o.instance = id })
}

// WithEventScheme sets the scheme used to find the kind of typed objects
// passed to Eventf (unstructured objects carry their own). Default:
// client-go's scheme.Scheme (every built-in kind). Add your CRD types to a
// scheme and pass it to record events about typed CRD objects.
func WithEventScheme(s *runtime.Scheme) EventOption {
	return eventOptionFunc(func(o *eventOptions) { o.scheme = s })
}

// WithEventQueueSize sets how many events may wait to be written; when the
// queue is full, Eventf drops the event and logs it. Default
// [DefaultEventQueueSize].
func WithEventQueueSize(n int) EventOption {
	return eventOptionFunc(func(o *eventOptions) { o.queueSize = n })
}

// WithEventRetry sets the backoff between tries to write an event when the
// API server cannot be reached; after b.Steps tries the event is dropped and
// logged. Default: 500ms doubling to at most 10s, 8 tries (about 40s).
func WithEventRetry(b wait.Backoff) EventOption {
	return eventOptionFunc(func(o *eventOptions) { o.backoff = b })
}

// StartEventRecorder starts an [EventRecorder] reporting as controller (the
// Event's reportingController, e.g. "example.com/mirror"). Events are written
// in the background until ctx is cancelled (what is still queued is then
// dropped, and counted in the log) or [EventRecorder.Shutdown] is called
// (what is queued is written first). Errors go to the client's logger.
//
// The client's user needs create and patch on events.events.k8s.io in the
// namespaces of the objects it reports about.
func (c *Client) StartEventRecorder(ctx context.Context, controller string, opts ...EventOption) (*EventRecorder, error) {
	o := eventOptions{
		scheme:    scheme.Scheme,
		queueSize: DefaultEventQueueSize,
		backoff:   wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.25, Steps: 8, Cap: 10 * time.Second},
	}
	for _, opt := range opts {
		opt.applyEvent(&o)
	}
	var errs []error
	if controller == "" {
		errs = append(errs, errors.New(`client: StartEventRecorder: the controller name is empty; pass the reporting controller, e.g. "example.com/my-controller"`))
	}
	if o.scheme == nil {
		errs = append(errs, errors.New("client: WithEventScheme(nil): the scheme is nil; pass a *runtime.Scheme or leave the default"))
	}
	if o.queueSize < 1 {
		errs = append(errs, fmt.Errorf("client: WithEventQueueSize(%d): must be at least 1", o.queueSize))
	}
	if o.backoff.Steps < 1 || o.backoff.Duration <= 0 {
		errs = append(errs, fmt.Errorf("client: WithEventRetry: need Steps >= 1 and Duration > 0 (got Steps=%d Duration=%s)", o.backoff.Steps, o.backoff.Duration))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.instance == "" {
		host, _ := os.Hostname()
		o.instance = controller + "-" + host
	}
	ctx, stop := context.WithCancel(ctx)
	r := &EventRecorder{
		c: c, scheme: o.scheme, controller: controller, instance: o.instance,
		log:     c.log.WithValues("controller", controller),
		backoff: o.backoff,
		queue:   make(chan *eventsv1.Event, o.queueSize),
		stop:    stop,
		done:    make(chan struct{}),
		series:  map[seriesKey]*eventsv1.Event{},
	}
	go r.write(ctx)
	return r, nil
}

var _ events.EventRecorder = (*EventRecorder)(nil)

// Eventf records an event about regarding (required) and related (may be
// nil): eventtype is corev1.EventTypeNormal or EventTypeWarning, reason a
// short UpperCamelCase word ("Mirrored"), action what was done ("Create"),
// and note a human-readable message formatted with args. It never blocks:
// the event is queued and written in the background. An event that cannot
// be built (an object of a kind the scheme does not know, a bad type) is
// logged and dropped.
func (r *EventRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	now := time.Now()
	msg := fmt.Sprintf(note, args...)
	ev, err := r.makeEvent(now, regarding, related, eventtype, reason, action, msg)
	if err != nil {
		r.log.Error(err, "Event not recorded", "reason", reason, "note", msg)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.done:
		r.closed = true
	default:
	}
	if r.closed {
		r.log.Error(nil, "Event not recorded: the recorder was stopped", "regarding", ev.Regarding.Name, "reason", reason)
		return
	}
	select {
	case r.queue <- ev:
	default:
		r.log.Error(nil, "Event dropped: the queue is full (see WithEventQueueSize)", "regarding", ev.Regarding.Name, "reason", reason)
	}
}

func (r *EventRecorder) makeEvent(now time.Time, regarding, related runtime.Object, eventtype, reason, action, note string) (*eventsv1.Event, error) {
	if regarding == nil {
		return nil, errors.New("client: Eventf: regarding is nil; pass the object the event is about")
	}
	if eventtype != corev1.EventTypeNormal && eventtype != corev1.EventTypeWarning {
		return nil, fmt.Errorf("client: Eventf: event type %q: use corev1.EventTypeNormal or corev1.EventTypeWarning", eventtype)
	}
	if reason == "" || action == "" {
		return nil, errors.New("client: Eventf: reason and action are required by events.k8s.io/v1")
	}
	ref, err := reference.GetReference(r.scheme, regarding)
	if err != nil {
		return nil, fmt.Errorf("client: Eventf: no reference to the regarding object: %w (add its type with WithEventScheme)", err)
	}
	var relRef *corev1.ObjectReference
	if related != nil {
		if relRef, err = reference.GetReference(r.scheme, related); err != nil {
			r.log.V(4).Info("Event's related object has no reference; recording without it", "err", err)
		}
	}
	ns := ref.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault // as client-go: events about cluster-scoped objects
	}
	// Notes are limited to 1 kB by validation.
	if len(note) > 1024 {
		note = note[:1021] + "..."
	}
	t := metav1.NewMicroTime(now)
	return &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%v.%x", ref.Name, now.UnixNano()),
			Namespace: ns,
		},
		EventTime:           t,
		ReportingController: r.controller,
		ReportingInstance:   r.instance,
		Action:              action,
		Reason:              reason,
		Regarding:           *ref,
		Related:             relRef,
		Note:                note,
		Type:                eventtype,
	}, nil
}

// Shutdown stops accepting events, writes those still queued and waits for
// the writer to return. If ctx ends first, the rest are dropped and Shutdown
// returns an error saying how many. Calling it again returns nil at once
// once the writer has returned.
func (r *EventRecorder) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if !r.queueClosed {
		r.closed, r.queueClosed = true, true
		close(r.queue) // the writer drains what is queued, then returns
	}
	r.mu.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		r.stop()
		<-r.done
	}
	r.stop()
	if r.dropped > 0 {
		return fmt.Errorf("client: EventRecorder.Shutdown: %d events not written (see the log)", r.dropped)
	}
	return nil
}

// write is the one goroutine that talks to the API server.
func (r *EventRecorder) write(ctx context.Context) {
	defer close(r.done)
	for {
		var ev *eventsv1.Event
		var ok bool
		select {
		case ev, ok = <-r.queue:
			if !ok {
				return
			}
		case <-ctx.Done():
			// Stopped without a Shutdown flush: count what is left.
			n := len(r.queue)
			r.dropped += n
			if n > 0 {
				r.log.Error(ctx.Err(), "Events not written: the recorder was stopped", "count", n)
			}
			return
		}
		if !r.record(ctx, ev) {
			r.dropped++
		}
	}
}

// record writes one event (or the next count of its series) and reports
// whether it was written.
func (r *EventRecorder) record(ctx context.Context, ev *eventsv1.Event) bool {
	for k, old := range r.series {
		last := old.EventTime.Time
		if old.Series != nil {
			last = old.Series.LastObservedTime.Time
		}
		if ev.EventTime.Time.Sub(last) > eventSeriesWindow {
			delete(r.series, k)
		}
	}
	key := seriesKey{typ: ev.Type, action: ev.Action, reason: ev.Reason, controller: ev.ReportingController,
		instance: ev.ReportingInstance, note: ev.Note, regarding: ev.Regarding}
	if ev.Related != nil {
		key.related = *ev.Related
	}
	if first, ok := r.series[key]; ok {
		// A repeat: count it on the first event instead of a new object.
		next := first.DeepCopy()
		if next.Series == nil {
			next.Series = &eventsv1.EventSeries{Count: 1}
		}
		next.Series.Count++
		next.Series.LastObservedTime = ev.EventTime
		written, err := r.retry(ctx, func() (*eventsv1.Event, error) { return r.patchSeries(ctx, next) })
		if err != nil {
			r.log.Error(err, "Event not written", "regarding", ev.Regarding.Name, "reason", ev.Reason)
			return false
		}
		r.series[key] = written
		return true
	}
	written, err := r.retry(ctx, func() (*eventsv1.Event, error) {
		return r.c.kube.EventsV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	})
	if err != nil {
		r.log.Error(err, "Event not written", "regarding", ev.Regarding.Name, "reason", ev.Reason)
		return false
	}
	r.series[key] = written
	return true
}

// patchSeries writes a series count on the existing event, or creates it
// again if it was deleted (events expire after an hour by default).
func (r *EventRecorder) patchSeries(ctx context.Context, ev *eventsv1.Event) (*eventsv1.Event, error) {
	patch, err := json.Marshal(map[string]any{"series": ev.Series})
	if err != nil {
		return nil, err
	}
	out, err := r.c.kube.EventsV1().Events(ev.Namespace).Patch(ctx, ev.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		fresh := ev.DeepCopy()
		fresh.ResourceVersion = ""
		return r.c.kube.EventsV1().Events(ev.Namespace).Create(ctx, fresh, metav1.CreateOptions{})
	}
	return out, err
}

// retry calls write until it succeeds, fails for a reason retrying cannot
// fix (the server rejected the event), ctx ends, or the backoff is spent.
func (r *EventRecorder) retry(ctx context.Context, write func() (*eventsv1.Event, error)) (*eventsv1.Event, error) {
	b := r.backoff
	for {
		out, err := write()
		if err == nil {
			return out, nil
		}
		var status apierrors.APIStatus
		if errors.As(err, &status) && !retryableStatus(err) {
			return nil, err
		}
		if b.Steps <= 1 || ctx.Err() != nil {
			return nil, err
		}
		r.log.V(2).Info("Writing an event failed; retrying", "err", err)
		t := time.NewTimer(b.Step())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

func retryableStatus(err error) bool {
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err)
}
