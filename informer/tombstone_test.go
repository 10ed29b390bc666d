package informer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	fcache "k8s.io/client-go/tools/cache/testing"
)

func testPod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: "7"}}
}

// testInformer wraps a client-go informer the way For does, without a
// server.
func testInformer(inf cache.SharedIndexInformer) *Informer[*corev1.Pod] {
	e := &entry{
		gvr:        corev1.SchemeGroupVersion.WithResource("pods"),
		namespaced: true,
		namespaces: []string{""},
		informers:  map[string]cache.SharedIndexInformer{"": inf},
		lastErr:    map[string]error{},
	}
	return &Informer[*corev1.Pod]{f: &Factory{log: logr.Discard()}, e: e}
}

func TestHandlerUnwrapsTombstones(t *testing.T) {
	inf := testInformer(nil)
	p := testPod("p")
	tests := []struct {
		name string
		obj  any
		want *corev1.Pod // nil: OnDelete must not be called
	}{
		{"plain object", p, p},
		{"tombstone", cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: p}, p},
		{"tombstone pointer", &cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: p}, p},
		{"tombstone of another type", cache.DeletedFinalStateUnknown{Key: "ns/c", Obj: &corev1.ConfigMap{}}, nil},
		{"another type", &corev1.ConfigMap{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []*corev1.Pod
			h := inf.adapter(Handler[*corev1.Pod]{OnDelete: func(p *corev1.Pod) { got = append(got, p) }})
			h.OnDelete(tt.obj)
			switch {
			case tt.want == nil && len(got) != 0:
				t.Fatalf("OnDelete called with %v", got)
			case tt.want != nil && (len(got) != 1 || got[0] != tt.want):
				t.Fatalf("OnDelete got %v, want %v", got, tt.want)
			}
		})
	}
	// nil callbacks are skipped, not called.
	h := inf.adapter(Handler[*corev1.Pod]{})
	h.OnAdd(p, true)
	h.OnUpdate(p, p)
	h.OnDelete(cache.DeletedFinalStateUnknown{Obj: p})
}

func TestUnwrap(t *testing.T) {
	p := testPod("p")
	if Unwrap(cache.DeletedFinalStateUnknown{Obj: p}) != p || Unwrap(p) != p || Unwrap(nil) != nil {
		t.Fatal("Unwrap")
	}
	obj, err := DropManagedFields(cache.DeletedFinalStateUnknown{Obj: p})
	if err != nil || obj.(cache.DeletedFinalStateUnknown).Obj != p {
		t.Fatalf("DropManagedFields on a tombstone = %v, %v", obj, err)
	}
}

// noWatchList makes the reflector list then watch: the fake source does not
// implement the watch-list protocol.
type noWatchList struct{ *fcache.FakeControllerSource }

func (noWatchList) IsWatchListSemanticsUnSupported() bool { return true }

// TestTombstoneFromRelist makes client-go produce a real tombstone: the
// object is deleted while the watch is down, so the next relist no longer
// contains it and the DeltaFIFO reports DeletedFinalStateUnknown. The typed
// handler must get the Pod.
func TestTombstoneFromRelist(t *testing.T) {
	src := fcache.NewFakeControllerSource()
	src.Add(testPod("a"))
	src.Add(testPod("b"))
	sii := cache.NewSharedIndexInformer(noWatchList{src}, &corev1.Pod{}, 0, defaultIndexers())
	inf := testInformer(sii)

	var mu sync.Mutex
	var deleted []*corev1.Pod
	var sawTombstone bool
	if _, err := sii.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		_, ok := obj.(cache.DeletedFinalStateUnknown)
		mu.Lock()
		sawTombstone = sawTombstone || ok
		mu.Unlock()
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := inf.AddHandler(Handler[*corev1.Pod]{OnDelete: func(p *corev1.Pod) {
		mu.Lock()
		deleted = append(deleted, p)
		mu.Unlock()
	}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { sii.RunWithContext(ctx) })
	defer func() { cancel(); wg.Wait() }()
	if !cache.WaitForCacheSync(ctx.Done(), sii.HasSynced) {
		t.Fatal("not synced")
	}
	src.DeleteDropWatch(testPod("a")) // deleted, but no watch event
	src.ResetWatch()                  // watch breaks; the reflector relists

	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		done := len(deleted) > 0 && sawTombstone
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no tombstone delivered after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(deleted) != 1 || deleted[0].Name != "a" || deleted[0].Namespace != "ns" {
		t.Fatalf("typed OnDelete got %v, want Pod ns/a", deleted)
	}
	if _, err := inf.Lister().Get("ns", "a"); err == nil {
		t.Fatal("a is still cached")
	}
	if p, err := inf.Lister().Get("ns", "b"); err != nil || p.Name != "b" {
		t.Fatalf("Get b = %v, %v", p, err)
	}
}
