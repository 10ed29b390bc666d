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
// (created, updated, deleted or unchanged). Errors are logged to stderr and
// retried with backoff.
//
// # Orphans
//
// Owner references cannot cross namespaces, so a mirror points back to its
// source with the kubekit.dev/mirror-of=<namespace>/<name> annotation and is
// labelled kubekit.dev/mirrored=true. A second informer watches that label;
// every mirror event enqueues its source's key. So a mirror whose source was
// deleted while the controller was down is found by the initial list and
// deleted, and a mirror edited or deleted by hand is put back. A ConfigMap
// in the target namespace that is not a mirror of this source is never
// overwritten.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"sync"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/informer"
	"github.com/kubekit/kubekit/queue"
)

// The controller's API: labels and annotations on ConfigMaps.
const (
	MirrorLabel        = "kubekit.dev/mirror"    // "true" on a source
	MirrorToAnnotation = "kubekit.dev/mirror-to" // target namespace, on a source
	MirroredLabel      = "kubekit.dev/mirrored"  // "true" on a mirror
	MirrorOfAnnotation = "kubekit.dev/mirror-of" // "namespace/name" of its source, on a mirror
	indexMirrorOf      = "mirror-of"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "controller:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var kf client.Flags
	kf.BindFlags(fs)
	workers := fs.Int("workers", 2, "number of reconcile workers")
	verbosity := fs.Int("v", 0, "log verbosity on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *workers < 1 {
		return fmt.Errorf("--workers=%d: need at least 1", *workers)
	}
	logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(stderr), textlogger.Verbosity(*verbosity)))
	ctx = klog.NewContext(ctx, logger)

	c, err := client.New(kf.Options()...)
	if err != nil {
		return err
	}
	out := &syncWriter{w: stdout}
	ctrl, err := newController(ctx, c, out)
	if err != nil {
		return err
	}
	return ctrl.run(ctx, *workers)
}

type controller struct {
	kube      kubernetes.Interface
	factories []*informer.Factory
	sources   *informer.Lister[*corev1.ConfigMap]
	mirrors   *informer.Lister[*corev1.ConfigMap]
	queue     *queue.Queue[string] // source keys: "namespace/name"
	out       *syncWriter
}

func newController(ctx context.Context, c *client.Client, out *syncWriter) (*controller, error) {
	// Two factories, because a factory's label selector applies to all its
	// informers: one sees only sources, one only mirrors. Removing the
	// mirror label makes the source leave the first informer's selection,
	// which it reports as a delete.
	srcFactory, err := informer.New(c, informer.WithLabelSelector(MirrorLabel+"=true"), informer.WithDropManagedFields(true))
	if err != nil {
		return nil, err
	}
	mirFactory, err := informer.New(c, informer.WithLabelSelector(MirroredLabel+"=true"), informer.WithDropManagedFields(true))
	if err != nil {
		return nil, err
	}
	sources, err := informer.For[*corev1.ConfigMap](ctx, srcFactory)
	if err != nil {
		return nil, err
	}
	mirrors, err := informer.For[*corev1.ConfigMap](ctx, mirFactory)
	if err != nil {
		return nil, err
	}
	if err := mirrors.AddIndex(informer.IndexFunc(indexMirrorOf, func(cm *corev1.ConfigMap) []string {
		if of := cm.Annotations[MirrorOfAnnotation]; of != "" {
			return []string{of}
		}
		return nil
	})); err != nil {
		return nil, err
	}
	q, err := queue.New[string](queue.WithName("configmap-mirror"))
	if err != nil {
		return nil, err
	}
	enqueueSource := func(cm *corev1.ConfigMap) { q.Add(cm.Namespace + "/" + cm.Name) }
	if _, err := sources.AddHandler(informer.Handler[*corev1.ConfigMap]{
		OnAdd:    func(cm *corev1.ConfigMap, _ bool) { enqueueSource(cm) },
		OnUpdate: func(_, cm *corev1.ConfigMap) { enqueueSource(cm) },
		OnDelete: enqueueSource,
	}); err != nil {
		return nil, err
	}
	enqueueOwner := func(cm *corev1.ConfigMap) {
		if of := cm.Annotations[MirrorOfAnnotation]; of != "" {
			q.Add(of)
		}
	}
	if _, err := mirrors.AddHandler(informer.Handler[*corev1.ConfigMap]{
		OnAdd:    func(cm *corev1.ConfigMap, _ bool) { enqueueOwner(cm) },
		OnUpdate: func(_, cm *corev1.ConfigMap) { enqueueOwner(cm) },
		OnDelete: enqueueOwner,
	}); err != nil {
		return nil, err
	}
	return &controller{
		kube:      c.Kubernetes(),
		factories: []*informer.Factory{srcFactory, mirFactory},
		sources:   sources.Lister(),
		mirrors:   mirrors.Lister(),
		queue:     q,
		out:       out,
	}, nil
}

// run starts the informers, waits for their caches and reconciles until ctx
// is cancelled.
func (c *controller) run(ctx context.Context, workers int) error {
	for _, f := range c.factories {
		f.Start(ctx)
		defer f.Shutdown()
	}
	for _, f := range c.factories {
		if err := f.WaitForSync(ctx); err != nil {
			c.queue.ShutDown()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	c.out.printf("controller: watching ConfigMaps labelled %s=true with %d workers\n", MirrorLabel, workers)
	return c.queue.Run(ctx, workers, c.reconcile)
}

// reconcile makes the mirrors of one source match it and prints what it did.
func (c *controller) reconcile(ctx context.Context, key string) (queue.Result, error) {
	action, err := c.sync(ctx, key)
	if err != nil {
		return queue.Result{}, err
	}
	c.out.printf("reconciled %s: %s\n", key, action)
	return queue.Result{}, nil
}

func (c *controller) sync(ctx context.Context, key string) (string, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return "", fmt.Errorf("bad key %q: %w", key, err)
	}
	src, err := c.sources.Get(ns, name)
	if err != nil && !apierrors.IsNotFound(err) {
		return "", err
	}
	existing, err := c.mirrors.ByIndex(indexMirrorOf, key)
	if err != nil {
		return "", err
	}
	target := ""
	if src != nil {
		target = src.Annotations[MirrorToAnnotation]
		if msgs := validation.IsDNS1123Label(target); target != "" && (len(msgs) > 0 || target == ns) {
			klog.FromContext(ctx).Info("Ignoring invalid mirror target; fix the annotation", "source", key, "annotation", MirrorToAnnotation, "value", target, "problems", msgs, "sameNamespace", target == ns)
			target = ""
		}
	}

	action := "unchanged"
	// Delete mirrors in any namespace but the target: the source is gone,
	// unlabelled, or now points elsewhere.
	for _, m := range existing {
		if m.Namespace == target {
			continue
		}
		err := c.kube.CoreV1().ConfigMaps(m.Namespace).Delete(ctx, m.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &m.UID}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return "", fmt.Errorf("delete mirror %s/%s: %w", m.Namespace, m.Name, err)
		}
		action = "deleted"
	}
	if target == "" {
		return action, nil
	}

	want := desiredMirror(src, target)
	var cur *corev1.ConfigMap
	for _, m := range existing {
		if m.Namespace == target && m.Name == name {
			cur = m
		}
	}
	if cur == nil {
		_, err := c.kube.CoreV1().ConfigMaps(target).Create(ctx, want, metav1.CreateOptions{})
		if err == nil {
			return "created", nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("create mirror %s/%s: %w", target, name, err)
		}
		// Not in our cache yet (or not a mirror at all): look at the live object.
		if cur, err = c.kube.CoreV1().ConfigMaps(target).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return "", fmt.Errorf("get mirror %s/%s: %w", target, name, err)
		}
		if cur.Annotations[MirrorOfAnnotation] != key {
			return "", fmt.Errorf("ConfigMap %s/%s exists and is not a mirror of %s: not overwriting it (delete it or change %s on %s)", target, name, key, MirrorToAnnotation, key)
		}
	}
	if sameContent(cur, want) {
		return action, nil
	}
	upd := cur.DeepCopy() // never modify the cached object
	upd.Labels, upd.Annotations, upd.Data, upd.BinaryData = want.Labels, mergeAnnotations(cur.Annotations, want.Annotations), want.Data, want.BinaryData
	if _, err := c.kube.CoreV1().ConfigMaps(target).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return "", fmt.Errorf("update mirror %s/%s: %w", target, name, err)
	}
	return "updated", nil
}

// desiredMirror is the copy of src that belongs in namespace target: its data
// and labels (without the source label), the mirror label and the annotation
// pointing back to src.
func desiredMirror(src *corev1.ConfigMap, target string) *corev1.ConfigMap {
	labels := maps.Clone(src.Labels)
	delete(labels, MirrorLabel)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[MirroredLabel] = "true"
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:        src.Name,
			Namespace:   target,
			Labels:      labels,
			Annotations: map[string]string{MirrorOfAnnotation: src.Namespace + "/" + src.Name},
		},
		Data:       src.Data,
		BinaryData: src.BinaryData,
	}
}

func mergeAnnotations(cur, want map[string]string) map[string]string {
	out := maps.Clone(cur)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, want)
	return out
}

func sameContent(cur, want *corev1.ConfigMap) bool {
	if !maps.Equal(cur.Labels, want.Labels) || !maps.Equal(cur.Data, want.Data) || len(cur.BinaryData) != len(want.BinaryData) {
		return false
	}
	for k, v := range want.BinaryData {
		if string(cur.BinaryData[k]) != string(v) {
			return false
		}
	}
	for k, v := range want.Annotations {
		if cur.Annotations[k] != v {
			return false
		}
	}
	return true
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
