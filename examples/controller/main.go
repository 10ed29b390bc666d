// Command controller is a small but complete controller: informers feed a
// work queue, workers reconcile. It mirrors every ConfigMap labelled
// kubekit.dev/mirror=true into the namespace named by its
// kubekit.dev/mirror-to annotation, keeps the copy up to date, and deletes it
// when the source is deleted, unlabelled or pointed elsewhere:
//
//	go run ./examples/controller --kubeconfig .kube.config --workers 2
//	kubectl create configmap app --from-literal=k=v -n team-a
//	kubectl label configmap app -n team-a kubekit.dev/mirror=true
//	kubectl annotate configmap app -n team-a kubekit.dev/mirror-to=team-b
//
// It prints one line once its caches are synced, then one line per
// reconcile of a source key:
//
//	controller: watching ConfigMaps labelled kubekit.dev/mirror=true with 2 workers
//	reconciled team-a/app: created
//
// (created, configured, unchanged or deleted: what the reconcile did to the
// mirrors, in kubectl's words). Errors are logged to stderr and retried with
// backoff. --help lists the flags; bad flags and fatal errors print
// "controller: <error>" on stderr and exit 1.
//
// # Writes
//
// Mirrors are written with server-side apply ([client.ApplyConfiguration],
// field manager "kubekit-configmap-mirror", taking over fields others
// changed) and deleted with [client.Client.Delete]; the printed outcome is
// the API server's answer, never a comparison made here. For every mirror it
// creates, changes or deletes the controller records an Event
// (events.k8s.io/v1) on the source ConfigMap: type Normal, reason Mirrored,
// note "mirrored to <ns>/<name>" or "deleted mirror <ns>/<name>". Events
// still queued at exit are written before the program ends.
//
// # Orphans
//
// Owner references cannot cross namespaces, so a mirror points back to its
// source with the kubekit.dev/mirror-of=<namespace>/<name> annotation and is
// labelled kubekit.dev/mirrored=true. A second informer watches that label;
// every mirror event enqueues its source's key. So a mirror whose source was
// deleted while the controller was down is found by the initial list and
// deleted, and a mirror edited or deleted by hand is put back (keys someone
// added to a mirror's data stay: server-side apply removes only fields it
// set). A ConfigMap in the target namespace that is not a mirror of this
// source is never overwritten.
//
// # Logging
//
// Logs go to stderr through kubekit's logging package, client-go's klog
// lines included: -v (verbosity; client-go logs each request at 6),
// --log-format json|console (default json), --log-file (a copy in a file).
//
// # Metrics
//
// --metrics-addr HOST:PORT (e.g. 127.0.0.1:8080, or :8080 on all
// interfaces) serves Prometheus metrics at /metrics from a registry of its
// own: the work queue's workqueue_* series (name="configmap-mirror"),
// client-go's rest_client_* series, controller_runtime_reconcile_* (by
// result, controller="configmap-mirror") and the two informers' informer_*
// series (name="sources" and name="mirrors": informer_synced,
// informer_store_objects, informer_queued_items,
// informer_processing_latency_seconds, informer_store_resource_version).
// The program prints "controller: serving metrics on
// http://ADDR/metrics" and shuts the server down on exit.
//
// # Running two replicas
//
// --leader-elect NAMESPACE/NAME campaigns for that coordination.k8s.io Lease
// with the identity --id (default hostname_pid). Every replica starts its
// informers and syncs its caches; only the leader runs the workers, so a new
// leader reconciles from a warm cache at once. The leader prints "leading as
// <id>" to stderr when it starts and "stopped leading" when it stops. On
// SIGINT/SIGTERM it finishes its reconciles, releases the Lease (another
// replica takes over within one --retry-period) and exits 0. A leader that
// loses the Lease (it could not renew it within --renew-deadline) exits 1
// with a message saying so, for its supervisor to restart it as a follower.
// --lease-duration, --renew-deadline and --retry-period default to the
// leader package's (and client-go's) 15s, 10s and 2s.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/kubekit/kubekit/client"
	clientprom "github.com/kubekit/kubekit/client/prometheus"
	"github.com/kubekit/kubekit/informer"
	informerprom "github.com/kubekit/kubekit/informer/prometheus"
	"github.com/kubekit/kubekit/leader"
	"github.com/kubekit/kubekit/logging"
	"github.com/kubekit/kubekit/queue"
	queueprom "github.com/kubekit/kubekit/queue/prometheus"
)

// The controller's API: labels and annotations on ConfigMaps.
const (
	MirrorLabel        = "kubekit.dev/mirror"    // "true" on a source
	MirrorToAnnotation = "kubekit.dev/mirror-to" // target namespace, on a source
	MirroredLabel      = "kubekit.dev/mirrored"  // "true" on a mirror
	MirrorOfAnnotation = "kubekit.dev/mirror-of" // "namespace/name" of its source, on a mirror
	indexMirrorOf      = "mirror-of"
)

// Names others see: the queue's metrics label, the field manager in
// managedFields, and the Events' reportingController and reason.
const (
	queueName      = "configmap-mirror"
	fieldManager   = "kubekit-configmap-mirror"
	eventReporter  = "kubekit.dev/configmap-mirror"
	reasonMirrored = "Mirrored"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, pflag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "controller:", err)
		os.Exit(1)
	}
}

type flags struct {
	workers       int
	metricsAddr   string
	leaderElect   string
	id            string
	leaseDuration time.Duration
	renewDeadline time.Duration
	retryPeriod   time.Duration
	kube          client.Flags
	log           logging.Flags

	lease cache.ObjectName // parsed --leader-elect
}

func (f *flags) bind(fs *pflag.FlagSet) {
	fs.IntVar(&f.workers, "workers", 2, "number of reconcile workers")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", `serve Prometheus metrics at http://HOST:PORT/metrics (e.g. "127.0.0.1:8080"; default: no metrics server)`)
	fs.StringVar(&f.leaderElect, "leader-elect", "", "NAMESPACE/NAME of the coordination.k8s.io Lease the replicas campaign for; only the leader reconciles (default: no leader election)")
	fs.StringVar(&f.id, "id", defaultID(), "this replica's identity in the Lease and in Events (must differ between replicas)")
	fs.DurationVar(&f.leaseDuration, "lease-duration", leader.DefaultLeaseDuration, "with --leader-elect: how long followers wait after the leader's last renewal before taking over")
	fs.DurationVar(&f.renewDeadline, "renew-deadline", leader.DefaultRenewDeadline, "with --leader-elect: how long the leader retries renewing before it gives up leading")
	fs.DurationVar(&f.retryPeriod, "retry-period", leader.DefaultRetryPeriod, "with --leader-elect: time between tries to acquire or renew the Lease")
	f.kube.BindPFlags(fs)
	f.log.BindPFlags(fs)
}

// defaultID is hostname_pid: unique among the replicas of a Deployment (one
// per Pod) and among processes on one machine.
func defaultID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("%s_%d", host, os.Getpid())
}

func (f *flags) validate(fs *pflag.FlagSet) error {
	var errs []error
	if f.workers < 1 {
		errs = append(errs, fmt.Errorf("--workers=%d: need at least 1", f.workers))
	}
	if f.metricsAddr != "" {
		if _, _, err := net.SplitHostPort(f.metricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("--metrics-addr=%q: %v; use HOST:PORT, e.g. 127.0.0.1:8080 or :8080", f.metricsAddr, err))
		}
	}
	if f.leaderElect != "" {
		lease, err := cache.ParseObjectName(f.leaderElect)
		if err != nil || lease.Namespace == "" || lease.Name == "" {
			errs = append(errs, fmt.Errorf("--leader-elect=%q: want NAMESPACE/NAME of a Lease, e.g. kube-system/configmap-mirror", f.leaderElect))
		}
		f.lease = lease
	} else {
		for _, name := range []string{"lease-duration", "renew-deadline", "retry-period"} {
			if fs.Changed(name) {
				errs = append(errs, fmt.Errorf("--%s: only used with --leader-elect NAMESPACE/NAME", name))
			}
		}
	}
	if f.id == "" {
		errs = append(errs, errors.New(`--id="": empty; leave it out for the default (hostname_pid)`))
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := pflag.NewFlagSet("controller", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: controller [flags]\n\nMirrors ConfigMaps labelled %s=true into the namespace named by their %s annotation.\n\nFlags:\n%s", MirrorLabel, MirrorToAnnotation, fs.FlagUsages())
	}
	var f flags
	f.bind(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := f.validate(fs); err != nil {
		return err
	}

	log, err := logging.New(logging.WithFlags(&f.log), logging.WithOutput(stderr))
	if err != nil {
		return err
	}
	defer log.Close()
	// Before the client exists: client-go picks its debugging transport
	// when the client is built, from klog's verbosity.
	restore, err := log.RouteKlog()
	if err != nil {
		return err
	}
	defer restore()
	ctx = klog.NewContext(ctx, log.Logger)

	// Metrics: the private registry is populated before the first request,
	// or client-go's hooks would miss it.
	var m metrics
	var reg *prometheus.Registry
	if f.metricsAddr != "" {
		reg = prometheus.NewRegistry()
		if err := clientprom.Register(reg); err != nil {
			return err
		}
		p, err := queueprom.New(reg)
		if err != nil {
			return err
		}
		m.queue = []queue.Option{queue.WithMetricsProvider(p)}
		if m.informers, err = informerprom.New(reg); err != nil {
			return err
		}
	}

	c, err := client.New(append(f.kube.Options(), client.WithLogger(log.WithName("client")))...)
	if err != nil {
		return err
	}
	defer c.Close()

	if reg != nil {
		stopServer, err := serveMetrics(f.metricsAddr, reg, stdout, log.Logger)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, stopServer()) }()
	}

	// The recorder outlives ctx: Shutdown writes what is queued at exit.
	rec, err := c.StartEventRecorder(context.WithoutCancel(ctx), eventReporter, client.WithEventInstance(f.id))
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = errors.Join(err, rec.Shutdown(sctx))
	}()

	out := &syncWriter{w: stdout}
	ctrl, err := newController(ctx, c, rec, out, log.Logger, m)
	if err != nil {
		return err
	}
	defer ctrl.queue.ShutDown() // a follower never runs the queue
	for _, fac := range ctrl.factories {
		fac.Start(ctx)
		defer fac.Shutdown()
	}
	for _, fac := range ctrl.factories {
		if err := fac.WaitForSync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	out.printf("controller: watching ConfigMaps labelled %s=true with %d workers\n", MirrorLabel, f.workers)
	if f.leaderElect == "" {
		return ctrl.queue.Run(ctx, f.workers, ctrl.reconcile)
	}

	// Informers are warm on every replica; only the leader drains the queue.
	err = leader.Run(ctx, c, f.lease.Namespace, f.lease.Name, func(ctx context.Context) error {
		fmt.Fprintf(stderr, "leading as %s\n", f.id)
		defer fmt.Fprintln(stderr, "stopped leading")
		return ctrl.queue.Run(ctx, f.workers, ctrl.reconcile)
	},
		leader.WithIdentity(f.id),
		leader.WithLeaseDuration(f.leaseDuration),
		leader.WithRenewDeadline(f.renewDeadline),
		leader.WithRetryPeriod(f.retryPeriod),
		leader.WithLogger(log.WithName("leader")),
	)
	if errors.Is(err, leader.ErrLeadershipLost) {
		return fmt.Errorf("lost the Lease %s, exiting so that a supervisor restarts this replica as a follower: %w", f.lease, err)
	}
	return err
}

// serveMetrics serves reg at http://addr/metrics until the returned function
// shuts the server down.
func serveMetrics(addr string, reg *prometheus.Registry, stdout io.Writer, log logr.Logger) (stop func() error, _ error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr=%s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: promLogger{log}}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "controller: serving metrics on http://%s/metrics\n", ln.Addr())
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(ctx)
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		if err != nil {
			return fmt.Errorf("metrics server: %w", err)
		}
		return nil
	}, nil
}

// promLogger passes promhttp's errors (a collector that failed) to the log.
type promLogger struct{ log logr.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Error(errors.New(fmt.Sprint(v...)), "Serving metrics")
}

type controller struct {
	c         *client.Client
	rec       *client.EventRecorder
	factories []*informer.Factory
	sources   *informer.Lister[*corev1.ConfigMap]
	mirrors   *informer.Lister[*corev1.ConfigMap]
	queue     *queue.Queue[cache.ObjectName] // source keys
	out       *syncWriter
}

// metrics are the optional metrics providers (--metrics-addr).
type metrics struct {
	queue     []queue.Option
	informers *informerprom.Metrics
}

// configMaps returns a factory and its informer of ConfigMaps labelled selector,
// reporting to m.informers (if set) as name.
func (m metrics) configMaps(ctx context.Context, c *client.Client, name, selector string) (*informer.Factory, *informer.Informer[*corev1.ConfigMap], error) {
	opts := []informer.Option{informer.WithLabelSelector(selector), informer.WithDropManagedFields(true)}
	if m.informers != nil {
		opts = append(opts, informer.WithMetrics(name, m.informers))
	}
	f, err := informer.New(c, opts...)
	if err != nil {
		return nil, nil, err
	}
	inf, err := informer.For[*corev1.ConfigMap](ctx, f)
	if err == nil && m.informers != nil {
		err = m.informers.Watch(name, inf)
	}
	if err != nil {
		f.Shutdown() // releases the metrics name
		return nil, nil, err
	}
	return f, inf, nil
}

func newController(ctx context.Context, c *client.Client, rec *client.EventRecorder, out *syncWriter, log logr.Logger, m metrics) (_ *controller, err error) {
	// Two factories, because a factory's label selector applies to all its
	// informers: one sees only sources, one only mirrors. Removing the
	// mirror label makes the source leave the first informer's selection,
	// which it reports as a delete.
	srcFactory, sources, err := m.configMaps(ctx, c, "sources", MirrorLabel+"=true")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			srcFactory.Shutdown()
		}
	}()
	mirFactory, mirrors, err := m.configMaps(ctx, c, "mirrors", MirroredLabel+"=true")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			mirFactory.Shutdown()
		}
	}()
	if err := mirrors.AddIndex(informer.IndexFunc(indexMirrorOf, func(cm *corev1.ConfigMap) []string {
		if of := cm.Annotations[MirrorOfAnnotation]; of != "" {
			return []string{of}
		}
		return nil
	})); err != nil {
		return nil, err
	}
	q, err := queue.New[cache.ObjectName](append([]queue.Option{queue.WithName(queueName), queue.WithLogger(log.WithName("queue"))}, m.queue...)...)
	if err != nil {
		return nil, err
	}
	enqueueSource := func(cm *corev1.ConfigMap) { q.Add(cache.MetaObjectToName(cm)) }
	if _, err := sources.AddHandler(informer.Handler[*corev1.ConfigMap]{
		OnAdd:    func(cm *corev1.ConfigMap, _ bool) { enqueueSource(cm) },
		OnUpdate: func(_, cm *corev1.ConfigMap) { enqueueSource(cm) },
		OnDelete: enqueueSource,
	}); err != nil {
		return nil, err
	}
	enqueueOwner := func(cm *corev1.ConfigMap) {
		of, err := cache.ParseObjectName(cm.Annotations[MirrorOfAnnotation])
		if err != nil || of.Namespace == "" || of.Name == "" {
			return // not a mirror we made: nothing to reconcile
		}
		q.Add(of)
	}
	if _, err := mirrors.AddHandler(informer.Handler[*corev1.ConfigMap]{
		OnAdd:    func(cm *corev1.ConfigMap, _ bool) { enqueueOwner(cm) },
		OnUpdate: func(_, cm *corev1.ConfigMap) { enqueueOwner(cm) },
		OnDelete: enqueueOwner,
	}); err != nil {
		return nil, err
	}
	return &controller{
		c:         c,
		rec:       rec,
		factories: []*informer.Factory{srcFactory, mirFactory},
		sources:   sources.Lister(),
		mirrors:   mirrors.Lister(),
		queue:     q,
		out:       out,
	}, nil
}

// reconcile makes the mirrors of one source match it and prints what it did.
func (c *controller) reconcile(ctx context.Context, key cache.ObjectName) (queue.Result, error) {
	outcome, err := c.sync(ctx, key)
	if err != nil {
		return queue.Result{}, err
	}
	c.out.printf("reconciled %s: %s\n", key, outcome)
	return queue.Result{}, nil
}

// sync returns Unchanged when no mirror was written, else the last write's
// outcome: Deleted for a mirror removed, Created or Configured for the
// mirror applied (moving a mirror deletes one and creates one: Created).
func (c *controller) sync(ctx context.Context, key cache.ObjectName) (client.Outcome, error) {
	src, err := c.sources.Get(key.Namespace, key.Name)
	if err != nil && !apierrors.IsNotFound(err) {
		return "", err
	}
	existing, err := c.mirrors.ByIndex(indexMirrorOf, key.String())
	if err != nil {
		return "", err
	}
	target := ""
	if src != nil {
		target = src.Annotations[MirrorToAnnotation]
		if msgs := validation.IsDNS1123Label(target); target != "" && (len(msgs) > 0 || target == key.Namespace) {
			klog.FromContext(ctx).Info("Ignoring invalid mirror target; fix the annotation", "source", key, "annotation", MirrorToAnnotation, "value", target, "problems", msgs, "sameNamespace", target == key.Namespace)
			target = ""
		}
	}
	// Events are about the source; a deleted source is named by its key.
	regarding := runtimeSource(src, key)

	outcome := client.Unchanged
	// Delete mirrors in any namespace but the target: the source is gone,
	// unlabelled, or now points elsewhere.
	inTarget := false
	for _, m := range existing {
		if m.Namespace == target {
			inTarget = true
			continue
		}
		mirror := cache.MetaObjectToName(m)
		stub := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: m.Namespace, Name: m.Name}} // never hand out the cached object
		// Only the mirror this cache saw: one re-created meanwhile under
		// the same name (by a user, say) is a Conflict, and kept.
		uid := m.UID
		if err := client.IgnoreNotFound(c.c.Delete(ctx, stub, client.Preconditions{UID: &uid})); err != nil {
			return "", fmt.Errorf("delete mirror %s: %w", mirror, err)
		}
		outcome = client.Deleted
		c.rec.Eventf(regarding, stub, corev1.EventTypeNormal, reasonMirrored, "Delete", "deleted mirror %s", mirror)
	}
	if target == "" {
		return outcome, nil
	}

	mirror := cache.ObjectName{Namespace: target, Name: key.Name}
	if !inTarget {
		// Not a mirror in our cache: either none exists, the cache lags
		// behind our own write, or a ConfigMap that is not ours has the name.
		cur := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: target, Name: key.Name}}
		err := c.c.Get(ctx, cur)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return "", fmt.Errorf("get %s: %w", mirror, err)
		case cur.Annotations[MirrorOfAnnotation] != key.String():
			return "", fmt.Errorf("ConfigMap %s exists and is not a mirror of %s: not overwriting it (delete it or change %s on %s)", mirror, key, MirrorToAnnotation, key)
		}
	}
	applied, o, err := client.ApplyConfiguration[*corev1.ConfigMap](ctx, c.c, desiredMirror(src, target),
		client.FieldManager(fieldManager), client.ForceOwnership(true))
	if err != nil {
		return "", fmt.Errorf("apply mirror %s: %w", mirror, err)
	}
	switch o {
	case client.Created:
		c.rec.Eventf(regarding, applied, corev1.EventTypeNormal, reasonMirrored, "Create", "mirrored to %s", mirror)
	case client.Configured:
		c.rec.Eventf(regarding, applied, corev1.EventTypeNormal, reasonMirrored, "Update", "mirrored to %s", mirror)
	}
	if o != client.Unchanged {
		outcome = o
	}
	return outcome, nil
}

// runtimeSource is what Events are recorded about: the cached source, or,
// once it is gone, an object naming it.
func runtimeSource(src *corev1.ConfigMap, key cache.ObjectName) *corev1.ConfigMap {
	if src != nil {
		return src
	}
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
}

// desiredMirror is the copy of src that belongs in namespace target: its data
// and labels (without the source label), the mirror label and the annotation
// pointing back to src. Applied server-side, it names only these fields.
func desiredMirror(src *corev1.ConfigMap, target string) *applycorev1.ConfigMapApplyConfiguration {
	labels := maps.Clone(src.Labels)
	delete(labels, MirrorLabel)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[MirroredLabel] = "true"
	return applycorev1.ConfigMap(src.Name, target).
		WithLabels(labels).
		WithAnnotations(map[string]string{MirrorOfAnnotation: cache.MetaObjectToName(src).String()}).
		WithData(src.Data).
		WithBinaryData(src.BinaryData)
}

// syncWriter serialises lines from concurrent workers.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, args...)
}
