package watch_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubekit/kubekit/watch"
)

// rvAtLeast says whether resourceVersion a is at or past b (etcd's are
// numbers; other API server writes, such as its own Lease, move them on).
func rvAtLeast(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	return errA == nil && errB == nil && x >= y
}

func configMapCheckpoint(t *testing.T, k kubernetes.Interface, ns, name, writer string) *watch.ConfigMapCheckpoint {
	t.Helper()
	cp, err := watch.NewConfigMapCheckpoint(k, ns, name, watch.WithWriterIdentity(writer))
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// loadRV returns the position saved in cp, read by a fresh checkpoint.
func loadRV(t *testing.T, k kubernetes.Interface, ns, name string) (rv, writer string) {
	t.Helper()
	s, err := configMapCheckpoint(t, k, ns, name, "reader").Load(t.Context())
	if err != nil || s == nil {
		t.Fatalf("Load = %v, %v", s, err)
	}
	cm, err := k.CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s.ResourceVersion, cm.Annotations[watch.WriterAnnotation]
}

// Two writers of one ConfigMap checkpoint: each save is conditional on what
// its writer last read or wrote, so the stale one gets ErrCheckpointConflict
// naming both, and the ConfigMap keeps the newer position.
func TestConfigMapCheckpointFenced(t *testing.T) {
	k := kube(t, env.Config())
	ns := "watch-fence"
	createNamespace(t, k, ns)
	ctx := t.Context()
	state := func(rv string) *watch.State {
		s := sampleState()
		s.ResourceVersion = rv
		return s
	}
	a := configMapCheckpoint(t, k, ns, "cp", "writer-a")
	b := configMapCheckpoint(t, k, ns, "cp", "writer-b")
	for _, cp := range []*watch.ConfigMapCheckpoint{a, b} {
		if s, err := cp.Load(ctx); s != nil || err != nil {
			t.Fatalf("Load of a missing ConfigMap = %v, %v", s, err)
		}
	}
	if err := a.Save(ctx, state("10")); err != nil {
		t.Fatal(err)
	}
	conflict := func(err error, stale, winner string) {
		t.Helper()
		if !errors.Is(err, watch.ErrCheckpointConflict) || !strings.Contains(err.Error(), `"`+stale+`"`) || !strings.Contains(err.Error(), `"`+winner+`"`) ||
			!strings.Contains(err.Error(), "leader election") {
			t.Fatalf("stale save = %v, want ErrCheckpointConflict naming %s and %s and the fix", err, stale, winner)
		}
	}
	// b read "missing": it may only create, and a exists now.
	conflict(b.Save(ctx, state("5")), "writer-b", "writer-a")
	if rv, w := loadRV(t, k, ns, "cp"); rv != "10" || w != "writer-a" {
		t.Fatalf("after b's stale create: rv %s by %s, want 10 by writer-a", rv, w)
	}
	// b reads a's position and moves on; now a is stale.
	if s, err := b.Load(ctx); err != nil || s.ResourceVersion != "10" {
		t.Fatalf("b.Load = %v, %v", s, err)
	}
	for _, rv := range []string{"20", "21"} {
		if err := b.Save(ctx, state(rv)); err != nil {
			t.Fatal(err)
		}
	}
	conflict(a.Save(ctx, state("15")), "writer-a", "writer-b")
	if rv, w := loadRV(t, k, ns, "cp"); rv != "21" || w != "writer-b" {
		t.Fatalf("after a's stale update: rv %s by %s, want 21 by writer-b", rv, w)
	}
	// Deleted behind a's back: a conflict too, not a re-create.
	if err := k.CoreV1().ConfigMaps(ns).Delete(ctx, "cp", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(ctx, state("22")); !errors.Is(err, watch.ErrCheckpointConflict) || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("save after the ConfigMap was deleted = %v, want ErrCheckpointConflict saying deleted", err)
	}
}

// Two Watchers share one ConfigMap checkpoint: the second loads the first
// one's position and saves past it, so the first one's next save conflicts
// and its Run stops with ErrCheckpointConflict, leaving the newer position.
func TestWatchersFencedByCheckpoint(t *testing.T) {
	c := newClient(t, env.Config())
	verifyNoLeaks(t, c)
	k := kube(t, env.Config())
	ns := "watch-fence-run"
	createNamespace(t, k, ns)
	cms := k.CoreV1().ConfigMaps(ns)
	newWatcher := func(cp watch.Checkpoint) *watch.Watcher[*corev1.ConfigMap] {
		t.Helper()
		w, err := watch.New[*corev1.ConfigMap](t.Context(), c, watch.WithNamespace(ns), watch.WithCheckpoint(cp),
			watch.WithLabelSelector("app=fenced"), watch.WithCheckpointBatch(1, 10*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	labeled := func(name string) *corev1.ConfigMap {
		o := cm(ns, name, nil)
		o.Labels = map[string]string{"app": "fenced"}
		return o
	}
	x, err := cms.Create(t.Context(), labeled("x"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// a handles x and saves; its handler then holds on to the next event.
	cpA := configMapCheckpoint(t, k, ns, "cp", "replica-a")
	var gate = make(chan struct{})
	var aHolding atomic.Bool
	ctxA, cancelA := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancelA()
	doneA := make(chan error, 1)
	go func() {
		doneA <- newWatcher(cpA).Run(ctxA, func(ctx context.Context, e watch.Event[*corev1.ConfigMap]) error {
			if e.Object.Name != "x" {
				aHolding.Store(true)
				select {
				case <-gate:
				case <-ctx.Done():
				}
			}
			return nil
		})
	}()
	waitFor(t, "a's checkpoint at x", func() bool {
		s, err := configMapCheckpoint(t, k, ns, "cp", "reader").Load(t.Context())
		return err == nil && s != nil && rvAtLeast(s.ResourceVersion, x.ResourceVersion)
	})
	y, err := cms.Create(t.Context(), labeled("y"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a holding y", aHolding.Load)

	// b takes over from a's position and saves y.
	cpB := configMapCheckpoint(t, k, ns, "cp", "replica-b")
	rec := newRecorder()
	stopB := start(t, newWatcher(cpB), rec.handle)
	waitFor(t, "b's checkpoint at y", func() bool {
		rv, w := loadRV(t, k, ns, "cp")
		return rvAtLeast(rv, y.ResourceVersion) && w == "replica-b"
	})
	if events, _ := rec.snapshot(); len(events) != 1 || events[0].Object.Name != "y" {
		t.Fatalf("b got %d events, want only y (resumed from a's position)", len(events))
	}
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	rvB, _ := loadRV(t, k, ns, "cp")

	// a wakes up: its save of y conflicts, Run stops, the ConfigMap keeps b's position.
	close(gate)
	select {
	case err = <-doneA:
	case <-time.After(30 * time.Second):
		t.Fatal("a's Run did not stop after its save conflicted")
	}
	if !errors.Is(err, watch.ErrCheckpointConflict) || !errors.Is(err, watch.ErrSaveFailed) ||
		!strings.Contains(err.Error(), `"replica-a"`) || !strings.Contains(err.Error(), `"replica-b"`) {
		t.Fatalf("a's Run = %v, want ErrCheckpointConflict naming replica-a and replica-b", err)
	}
	if rv, w := loadRV(t, k, ns, "cp"); rv != rvB || w != "replica-b" {
		t.Fatalf("after a's conflict the checkpoint is at %s by %s, want b's %s", rv, w, rvB)
	}
}
