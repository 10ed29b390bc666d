package watch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	apiwatch "k8s.io/apimachinery/pkg/watch"
)

// fakeWatcher is a Watcher of ConfigMaps whose watch calls return the
// streams sent to it, in order, and whose list returns list.
type fakeWatcher struct {
	*Watcher[*corev1.ConfigMap]
	streams chan *apiwatch.FakeWatcher
	mu      sync.Mutex
	rvs     []string // the resourceVersion of each watch call
}

func newFakeWatcher(cp Checkpoint, list *corev1.ConfigMapList) *fakeWatcher {
	o := defaultOptions()
	o.checkpoint = cp
	f := &fakeWatcher{streams: make(chan *apiwatch.FakeWatcher)}
	f.Watcher = &Watcher[*corev1.ConfigMap]{
		o:         o,
		log:       logr.Discard(),
		identity:  "configmaps",
		list:      func(context.Context, metav1.ListOptions) (runtime.Object, error) { return list.DeepCopy(), nil },
		tombstone: func() *corev1.ConfigMap { return &corev1.ConfigMap{} },
		watch: func(ctx context.Context, lo metav1.ListOptions) (eventStream, error) {
			f.mu.Lock()
			f.rvs = append(f.rvs, lo.ResourceVersion)
			f.mu.Unlock()
			select {
			case s := <-f.streams:
				return chanStream{s}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	}
	return f
}

// stream opens the next watch stream; Run's next watch call returns it.
func (f *fakeWatcher) stream(t *testing.T) *apiwatch.FakeWatcher {
	t.Helper()
	s := apiwatch.NewFake()
	select {
	case f.streams <- s:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not open a watch")
	}
	return s
}

func fakeCM(name, uid, rv string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(uid), ResourceVersion: rv}}
}

// TestGapRecoveryKnowsUnsavedEvents: a 410 Gone inside the stream, before
// the batch of handled events was saved, still compares the re-list with
// those events (they are folded into the known set first): an object seen
// only in the stream and gone from the list gets a synthetic DELETED.
func TestGapRecoveryKnowsUnsavedEvents(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cp := NewMemoryCheckpoint()
	if err := cp.Save(t.Context(), &State{Resource: "configmaps", ResourceVersion: "10"}); err != nil {
		t.Fatal(err)
	}
	list := &corev1.ConfigMapList{ListMeta: metav1.ListMeta{ResourceVersion: "100"}}
	list.Items = []corev1.ConfigMap{*fakeCM("a", "ua", "11"), *fakeCM("c", "uc", "50")}
	f := newFakeWatcher(cp, list)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var mu sync.Mutex
	var got []string
	done := make(chan error, 1)
	go func() {
		done <- f.Run(ctx, func(_ context.Context, e Event[*corev1.ConfigMap]) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, fmt.Sprintf("%s %s %s synthetic=%v", e.Type, e.Object.Name, e.Object.ResourceVersion, e.Synthetic))
			return nil
		})
	}()
	s := f.stream(t)
	s.Add(fakeCM("a", "ua", "11"))
	s.Add(fakeCM("b", "ub", "12"))
	s.Add(fakeCM("c", "uc", "13"))
	s.Error(&apierrors.NewResourceExpired("too old resource version: 10 (90)").ErrStatus)
	s2 := f.stream(t) // the watch after the re-list
	cancel()
	s2.Stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	want := []string{
		"ADDED a 11 synthetic=false", "ADDED b 12 synthetic=false", "ADDED c 13 synthetic=false",
		"MODIFIED c 50 synthetic=true", "DELETED b 12 synthetic=true",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
	if !slices.Equal(f.rvs, []string{"10", "100"}) {
		t.Errorf("watch calls from resourceVersions %q, want [10 100]", f.rvs)
	}
	st, err := cp.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(st.Objects, func(a, b ObjectRef) int { return compareKeys(key(a.Namespace, a.Name), key(b.Namespace, b.Name)) })
	wantObjs := []ObjectRef{{Namespace: "ns", Name: "a", UID: "ua", ResourceVersion: "11"}, {Namespace: "ns", Name: "c", UID: "uc", ResourceVersion: "50"}}
	if st.ResourceVersion != "100" || !slices.Equal(st.Objects, wantObjs) {
		t.Errorf("checkpoint: resourceVersion %s, objects %+v; want 100, %+v", st.ResourceVersion, st.Objects, wantObjs)
	}
}

// blockingCheckpoint is a MemoryCheckpoint whose saves wait for release
// once blocked is set.
type blockingCheckpoint struct {
	*MemoryCheckpoint
	blocked atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (b *blockingCheckpoint) Save(ctx context.Context, s *State) error {
	if b.blocked.Load() {
		b.entered <- struct{}{}
		select {
		case <-b.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return b.MemoryCheckpoint.Save(ctx, s)
}

// TestSlowSaveBoundsPendingChanges: while a save runs, delivery goes on
// until maxPending changes wait for the next save, then waits for the save;
// nothing is lost when it finishes.
func TestSlowSaveBoundsPendingChanges(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const maxPend = 4
	cp := &blockingCheckpoint{MemoryCheckpoint: NewMemoryCheckpoint(), entered: make(chan struct{}), release: make(chan struct{})}
	if err := cp.Save(t.Context(), &State{Resource: "configmaps", ResourceVersion: "10"}); err != nil {
		t.Fatal(err)
	}
	cp.blocked.Store(true)
	f := newFakeWatcher(cp, &corev1.ConfigMapList{})
	f.o.checkpointEvents, f.o.maxPending = 1, maxPend

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var handled atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- f.Run(ctx, func(context.Context, Event[*corev1.ConfigMap]) error { handled.Add(1); return nil })
	}()
	s := f.stream(t)
	s.Add(fakeCM("o-1", "u-1", "11")) // handed to the saver, which blocks
	<-cp.entered
	sent := make(chan int, 1)
	go func() {
		n := 1
		for i := 2; i <= 3*maxPend; i++ {
			s.Add(fakeCM(fmt.Sprintf("o-%d", i), fmt.Sprintf("u-%d", i), fmt.Sprint(10+i)))
			n = i
		}
		sent <- n
	}()
	// One event went to the save, maxPend wait for the next one; then Run
	// stops receiving. No condition can be polled for "does not happen", so
	// the check gives it a bounded time.
	deadline := time.Now().Add(30 * time.Second)
	for handled.Load() < 1+maxPend && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if n := handled.Load(); n != 1+maxPend {
		t.Fatalf("%d events handled while the save blocked, want %d", n, 1+maxPend)
	}
	cp.blocked.Store(false)
	close(cp.release)
	if n := <-sent; n != 3*maxPend {
		t.Fatalf("sent %d", n)
	}
	// The last event is handled once its Add returned; wait for it.
	for handled.Load() < 3*maxPend && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	st, err := cp.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Objects) != 3*maxPend || st.ResourceVersion != fmt.Sprint(10+3*maxPend) {
		t.Errorf("checkpoint: %d objects at resourceVersion %s, want %d at %d", len(st.Objects), st.ResourceVersion, 3*maxPend, 10+3*maxPend)
	}
}

// TestChangesOncePerObject: a batch that touches an object several times
// writes it once, as it is after the batch.
func TestChangesOncePerObject(t *testing.T) {
	up := func(name, uid, rv string) change {
		return change{k: key("ns", name), ref: ref{uid: types.UID(uid), rv: rv}}
	}
	del := func(name string) change { return change{k: key("ns", name), del: true} }
	r := &saver{identity: "configmaps", known: map[objKey]ref{}}
	batch := []change{up("a", "ua", "1"), up("b", "ub", "2"), del("a"), up("a", "ua2", "4"), up("b", "ub", "5"), del("b"), up("c", "uc", "7"), up("c", "uc", "8")}
	r.fold(batch) // as write does before changes
	c := r.changes(saveJob{batch: batch, rv: "9"})
	sortRefs := func(s []ObjectRef) []ObjectRef {
		slices.SortFunc(s, func(a, b ObjectRef) int { return compareKeys(key(a.Namespace, a.Name), key(b.Namespace, b.Name)) })
		return s
	}
	wantUp := []ObjectRef{{Namespace: "ns", Name: "a", UID: "ua2", ResourceVersion: "4"}, {Namespace: "ns", Name: "c", UID: "uc", ResourceVersion: "8"}}
	wantDel := []ObjectRef{{Namespace: "ns", Name: "b"}}
	if c.ResourceVersion != "9" || !slices.Equal(sortRefs(c.Upserted), wantUp) || !slices.Equal(c.Deleted, wantDel) {
		t.Errorf("changes: %+v\nwant upserted %+v, deleted %+v at 9", c, wantUp, wantDel)
	}
	// A second batch starts empty.
	second := []change{up("a", "ua2", "10")}
	r.fold(second)
	c = r.changes(saveJob{batch: second, rv: "10"})
	if len(c.Upserted) != 1 || len(c.Deleted) != 0 {
		t.Errorf("second batch: %+v, want a alone", c)
	}
}

// failingCheckpoint is a MemoryCheckpoint whose first fails saves fail.
type failingCheckpoint struct {
	*MemoryCheckpoint
	fails atomic.Int32
	saves atomic.Int32
}

func (f *failingCheckpoint) Save(ctx context.Context, s *State) error {
	f.saves.Add(1)
	if f.fails.Add(-1) >= 0 {
		return errors.New("disk full")
	}
	return f.MemoryCheckpoint.Save(ctx, s)
}

// A save that fails a few times is retried with backoff and Run goes on:
// once a save succeeds, the checkpoint holds every handled event.
func TestSaveRecoversAfterFailures(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cp := &failingCheckpoint{MemoryCheckpoint: NewMemoryCheckpoint()}
	if err := cp.MemoryCheckpoint.Save(t.Context(), &State{Resource: "configmaps", ResourceVersion: "10"}); err != nil {
		t.Fatal(err)
	}
	cp.fails.Store(3)
	f := newFakeWatcher(cp, &corev1.ConfigMapList{})
	f.o.checkpointEvents, f.o.checkpointInterval = 1, 10*time.Millisecond
	f.o.backoff = wait.Backoff{Duration: 10 * time.Millisecond, Factor: 1}
	var logs []string
	var mu sync.Mutex
	f.log = funcr.New(func(prefix, args string) { mu.Lock(); logs = append(logs, args); mu.Unlock() }, funcr.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, func(context.Context, Event[*corev1.ConfigMap]) error { return nil }) }()
	s := f.stream(t)
	s.Add(fakeCM("a", "ua", "11"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, _ := cp.Load(t.Context())
		if st.ResourceVersion == "11" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no successful save in 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	failed, again := 0, 0
	for _, l := range logs {
		if strings.Contains(l, "saving the checkpoint failed; retrying") && strings.Contains(l, "disk full") {
			failed++
		}
		if strings.Contains(l, "saving the checkpoint works again") {
			again++
		}
	}
	if failed != 3 || again != 1 {
		t.Errorf("logged %d save failures and %d recoveries, want 3 and 1:\n%s", failed, again, strings.Join(logs, "\n"))
	}
}

// When a file checkpoint's log is due for compaction, the saver writes its
// known set in full instead of the changes (it does not read the files
// back), and the files then load back to exactly the known set, before and
// after the compaction.
func TestSaverCompactsFileCheckpointFromMemory(t *testing.T) {
	ctx := t.Context()
	fc, err := NewFileCheckpoint(t.TempDir() + "/cp.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.Save(ctx, &State{Resource: "configmaps", ResourceVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	st, err := fc.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o := defaultOptions()
	o.checkpoint = fc
	s := newSaver(&o, "configmaps", logr.Discard())
	s.restore(st)
	compactions, rv := 0, 1
	pad := strings.Repeat("x", 150) // ~300 bytes a change: past 4 MiB of log in 15 batches
	for b := range 18 {
		for i := range 1000 {
			rv++
			name := fmt.Sprintf("cm-%d-%d-%s", b, i, pad)
			s.record(change{k: key("a-namespace-long-enough-for-a-megabyte-of-log", name), ref: ref{uid: types.UID(fmt.Sprintf("uid-%d", rv)), rv: fmt.Sprint(rv)}})
			if i%10 == 0 && b > 0 { // delete one of the last batch's
				s.record(change{k: key("a-namespace-long-enough-for-a-megabyte-of-log", fmt.Sprintf("cm-%d-%d-%s", b-1, i, pad)), del: true})
			}
		}
		s.moveTo(fmt.Sprint(rv), false)
		due, before := fc.compactDue(), fc.logSize
		if due { // a compaction that read the files back would fail on this
			if err := os.WriteFile(fc.Path(), []byte("not a state"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.saved(s.write(ctx, s.job())); err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
		if due {
			compactions++
			if fc.logSize >= before {
				t.Errorf("batch %d: compaction due, but the log grew from %d to %d bytes", b, before, fc.logSize)
			}
		}
		fresh, err := NewFileCheckpoint(fc.Path())
		if err != nil {
			t.Fatal(err)
		}
		got, err := fresh.Load(ctx)
		if err != nil {
			t.Fatalf("batch %d: load: %v", b, err)
		}
		byKey := func(objs []ObjectRef) map[objKey]ObjectRef {
			m := make(map[objKey]ObjectRef, len(objs))
			for _, o := range objs {
				m[key(o.Namespace, o.Name)] = o
			}
			return m
		}
		gotMap, want := byKey(got.Objects), byKey(s.snapshot("").Objects)
		if got.ResourceVersion != fmt.Sprint(rv) || !maps.Equal(gotMap, want) {
			t.Fatalf("batch %d: loaded %d objects at %s, want the %d known at %d", b, len(gotMap), got.ResourceVersion, len(want), rv)
		}
	}
	if compactions == 0 {
		t.Error("the log never came due for compaction: make the batches larger")
	}
}
