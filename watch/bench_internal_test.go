package watch

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// BenchmarkRelistDiff measures gap recovery's re-list diff for 10,000
// objects (500 new, 950 changed, 500 deleted during the gap), from the
// listed page to the synthetic events and the checkpoint, without the
// network.
func BenchmarkRelistDiff(b *testing.B) {
	const n = 10000
	list := &corev1.ConfigMapList{ListMeta: metav1.ListMeta{ResourceVersion: "999999"}}
	known := map[objKey]ref{}
	for i := range n + 500 {
		name := fmt.Sprintf("cm-%05d", i)
		uid := types.UID(fmt.Sprintf("uid-%d", i))
		rv := fmt.Sprint(1000 + i)
		if i < n-500 { // the last 500 known objects are gone from the list
			listed := rv
			if i%10 == 0 {
				listed = fmt.Sprint(500000 + i) // changed
			}
			list.Items = append(list.Items, corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: uid, ResourceVersion: listed}})
		}
		if i < n {
			known[objKey{"ns", name}] = ref{uid: uid, rv: rv}
		} else { // new in the list
			list.Items = append(list.Items, corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name + "-new", UID: uid + "-new", ResourceVersion: rv}})
		}
	}
	w := &Watcher[*corev1.ConfigMap]{
		o:         defaultOptions(),
		log:       logr.Discard(),
		identity:  "configmaps",
		list:      func(context.Context, metav1.ListOptions) (runtime.Object, error) { return list, nil },
		tombstone: func() *corev1.ConfigMap { return &corev1.ConfigMap{} },
	}
	events := 0
	h := func(context.Context, Event[*corev1.ConfigMap]) error { events++; return nil }
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		r := &runner[*corev1.ConfigMap]{w: w, h: h, s: newSaver(&w.o, w.identity, w.log)}
		r.s.known = maps.Clone(known)
		events = 0
		b.StartTimer()
		if err := r.relist(b.Context(), true); err != nil {
			b.Fatal(err)
		}
	}
	if events != 1950 {
		b.Fatalf("%d synthetic events, want 1950", events)
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "objects/s")
}

// BenchmarkCompaction measures the save that folds a file checkpoint's log
// (10,000 objects in its full state, 1,000 changed per log line) into a new
// full state, both ways in the same run: read-back is SaveChanges folding
// the files it reads and decodes, from-memory is the Watcher's way, a Save
// of the state it holds (FileCheckpoint.compactDue).
func BenchmarkCompaction(b *testing.B) {
	const n = 10000
	s := &State{Resource: "configmaps", ResourceVersion: "1"}
	for i := range n {
		s.Objects = append(s.Objects, ObjectRef{Namespace: "watch-bench-1764806400000000000", Name: fmt.Sprintf("cm-%d", i), UID: "0b5d3a36-6a9d-4d7c-9b4a-2f0f8a1c2d3e", ResourceVersion: "123456"})
	}
	c := &Changes{Resource: s.Resource, ResourceVersion: "2", Upserted: s.Objects[:1000]}
	for _, mode := range []string{"read-back", "from-memory"} {
		b.Run(mode, func(b *testing.B) {
			ctx := b.Context()
			cp, err := NewFileCheckpoint(b.TempDir() + "/cp.json")
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				b.StopTimer()
				if err := cp.Save(ctx, s); err != nil {
					b.Fatal(err)
				}
				for !cp.compactDue() {
					if err := cp.SaveChanges(ctx, c); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				if mode == "read-back" {
					err = cp.SaveChanges(ctx, c)
				} else {
					err = cp.Save(ctx, s)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
