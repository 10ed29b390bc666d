package watch_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubekit/kubekit/watch"
)

// Proof 1: create, update and delete arrive as ADDED, MODIFIED, DELETED
// with the right objects; pre-existing objects arrive as initial ADDED.
func TestEvents(t *testing.T) {
	c := newClient(t, env.Config())
	verifyNoLeaks(t, c)
	k := kube(t, env.Config())
	ns := "watch-events"
	createNamespace(t, k, ns)
	ctx := t.Context()
	if _, err := k.CoreV1().ConfigMaps(ns).Create(ctx, cm(ns, "before", map[string]string{"v": "0"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := watch.New[*corev1.ConfigMap](t.Context(), c, watch.WithNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := start(t, w, rec.handle)
	waitFor(t, "the initial ADDED", func() bool { return rec.count() >= 1 })

	created, err := k.CoreV1().ConfigMaps(ns).Create(ctx, cm(ns, "a", map[string]string{"v": "1"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Data["v"] = "2"
	updated, err := k.CoreV1().ConfigMaps(ns).Update(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.CoreV1().ConfigMaps(ns).Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "4 events", func() bool { return rec.count() >= 4 })
	if err := stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	events, _ := rec.snapshot()
	type want struct {
		typ     watch.EventType
		name, v string
		initial bool
	}
	wants := []want{{watch.Added, "before", "0", true}, {watch.Added, "a", "1", false}, {watch.Modified, "a", "2", false}, {watch.Deleted, "a", "2", false}}
	if len(events) != len(wants) {
		t.Fatalf("got %d events, want %d: %v", len(events), len(wants), events)
	}
	for i, w := range wants {
		e := events[i]
		if e.Type != w.typ || e.Object.Name != w.name || e.Object.Data["v"] != w.v || e.Initial != w.initial || e.Synthetic {
			t.Errorf("event %d = %s %s v=%s initial=%v synthetic=%v, want %+v", i, e.Type, e.Object.Name, e.Object.Data["v"], e.Initial, e.Synthetic, w)
		}
	}
	if events[1].Object.UID != created.UID || events[2].Object.ResourceVersion != updated.ResourceVersion {
		t.Errorf("objects do not match the API responses: uid %s/%s, rv %s/%s", events[1].Object.UID, created.UID, events[2].Object.ResourceVersion, updated.ResourceVersion)
	}
}

// Proof 4: a clean stop saves the checkpoint; a new Watcher on the same
// file delivers exactly the changes made while it was stopped.
func TestResumeFromFileAfterCleanStop(t *testing.T) {
	c := newClient(t, env.Config())
	verifyNoLeaks(t, c)
	k := kube(t, env.Config())
	ns := "watch-resume"
	createNamespace(t, k, ns)
	ctx := t.Context()
	cms := k.CoreV1().ConfigMaps(ns)
	for i := range 20 {
		if _, err := cms.Create(ctx, cm(ns, fmt.Sprintf("old-%d", i), nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "cp.json")
	newWatcher := func() *watch.Watcher[*corev1.ConfigMap] {
		cp := fileCheckpoint(t, path)
		w, err := watch.New[*corev1.ConfigMap](t.Context(), c, watch.WithNamespace(ns), watch.WithCheckpoint(cp))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	rec := newRecorder()
	stop := start(t, newWatcher(), rec.handle)
	if _, err := cms.Create(ctx, cm(ns, "live", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "21 events", func() bool { return rec.count() >= 21 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// 200 changes while stopped: 100 creates, 60 updates, 40 deletes.
	want := map[string]int{}
	for i := range 100 {
		o, err := cms.Create(ctx, cm(ns, fmt.Sprintf("new-%d", i), nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want["ADDED "+o.Name+" "+o.ResourceVersion]++
	}
	for i := range 60 {
		o, err := cms.Update(ctx, cm(ns, fmt.Sprintf("new-%d", i), map[string]string{"v": "2"}), metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want["MODIFIED "+o.Name+" "+o.ResourceVersion]++
	}
	for i := range 40 {
		name := fmt.Sprintf("old-%d", i%20)
		if i >= 20 {
			name = fmt.Sprintf("new-%d", 99-i)
		}
		if err := cms.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		want["DELETED "+name]++
	}

	rec2 := newRecorder()
	stop = start(t, newWatcher(), rec2.handle)
	waitFor(t, "200 events", func() bool { return rec2.count() >= 200 })
	waitState(t, k, func() *recorder { // the first run's state plus the second run's events
		_, s1 := rec.snapshot()
		merged := newRecorder()
		merged.state = s1
		ev2, _ := rec2.snapshot()
		for _, e := range ev2 {
			_ = merged.handle(ctx, e)
		}
		return merged
	}(), ns)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	events, _ := rec2.snapshot()
	got := map[string]int{}
	for _, e := range events {
		if e.Initial || e.Synthetic {
			t.Errorf("unexpected %s %s initial=%v synthetic=%v after a clean stop", e.Type, e.Object.Name, e.Initial, e.Synthetic)
		}
		s := string(e.Type) + " " + e.Object.Name
		if e.Type != watch.Deleted {
			s += " " + e.Object.ResourceVersion
		}
		got[s]++
	}
	if len(events) != 200 {
		t.Errorf("got %d events after the restart, want exactly the 200 missed ones", len(events))
	}
	for s, n := range want {
		if got[s] != n {
			t.Errorf("%q arrived %d times, want %d", s, got[s], n)
		}
	}
}

// A watch that goes quiet after a few events (fewer than a batch) saves
// them once the checkpoint interval passed, while Run waits for the next
// event: for a built-in type (Run reads the stream itself) and for
// unstructured objects (the dynamic client's watch).
func TestQuietWatchSavesOnTime(t *testing.T) {
	c := newClient(t, env.Config())
	verifyNoLeaks(t, c)
	k := kube(t, env.Config())
	for _, typed := range []bool{true, false} {
		t.Run(fmt.Sprintf("typed=%v", typed), func(t *testing.T) {
			ns := fmt.Sprintf("watch-quiet-%v", typed)
			createNamespace(t, k, ns)
			path := filepath.Join(t.TempDir(), "cp.json")
			opts := []watch.Option{watch.WithNamespace(ns), watch.WithCheckpoint(fileCheckpoint(t, path)),
				watch.WithCheckpointBatch(watch.DefaultCheckpointEvents, 200*time.Millisecond)}
			count := atomic.Int64{}
			var stop func() error
			if typed {
				w, err := watch.New[*corev1.ConfigMap](t.Context(), c, opts...)
				if err != nil {
					t.Fatal(err)
				}
				stop = start(t, w, func(context.Context, watch.Event[*corev1.ConfigMap]) error { count.Add(1); return nil })
			} else {
				w, err := watch.NewForResource(t.Context(), c, corev1.SchemeGroupVersion.WithResource("configmaps"), opts...)
				if err != nil {
					t.Fatal(err)
				}
				stop = start(t, w, func(context.Context, watch.Event[*unstructured.Unstructured]) error { count.Add(1); return nil })
			}
			defer func() {
				if err := stop(); err != nil {
					t.Error(err)
				}
			}()
			waitFor(t, "the first save (the initial list)", func() bool {
				st, err := fileCheckpoint(t, path).Load(t.Context())
				return err == nil && st != nil
			})
			var last string
			for i := range 3 {
				o, err := k.CoreV1().ConfigMaps(ns).Create(t.Context(), cm(ns, fmt.Sprintf("q-%d", i), nil), metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				last = o.ResourceVersion
			}
			waitFor(t, "3 events", func() bool { return count.Load() >= 3 })
			// Not stopped: the save comes from the interval alone.
			waitFor(t, "a save at the last event's resourceVersion", func() bool {
				st, err := fileCheckpoint(t, path).Load(t.Context())
				return err == nil && st != nil && st.ResourceVersion == last && len(st.Objects) == 3
			})
		})
	}
}
