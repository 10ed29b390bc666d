package watch_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
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
	"k8s.io/client-go/kubernetes"

	"github.com/kubekit/kubekit/testenv"
	"github.com/kubekit/kubekit/watch"
)

// logCounter counts log lines containing a phrase.
type logCounter struct {
	mu    sync.Mutex
	lines []string
}

func (l *logCounter) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, prefix+" "+args)
	}, funcr.Options{Verbosity: 1})
}

func (l *logCounter) count(phrase string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, phrase) {
			n++
		}
	}
	return n
}

// write is one successful write: the object's name and, unless it was a
// delete, the resourceVersion the API server returned.
type write struct{ name, rv string }

// writer makes n changes to ConfigMaps in ns (create, update, and every
// third object deleted), retrying through API server restarts, and
// reports each acknowledged write. progress counts attempts.
func writer(ctx context.Context, k kubernetes.Interface, ns string, n int, pace time.Duration, progress *atomic.Int64) ([]write, error) {
	cms := k.CoreV1().ConfigMaps(ns)
	var out []write
	retry := func(f func() error) error {
		for {
			err := f()
			if err == nil || ctx.Err() != nil {
				return err
			}
			if apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) {
				return nil // an earlier attempt went through before the connection broke
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i := 0; len(out) < n && ctx.Err() == nil; i++ {
		name := fmt.Sprintf("cm-%d", i)
		steps := []func() error{
			func() error {
				o, err := cms.Create(ctx, cm(ns, name, map[string]string{"v": "1"}), metav1.CreateOptions{})
				if err == nil {
					out = append(out, write{name, o.ResourceVersion})
				}
				return err
			},
			func() error {
				o, err := cms.Update(ctx, cm(ns, name, map[string]string{"v": "2"}), metav1.UpdateOptions{})
				if err == nil {
					out = append(out, write{name, o.ResourceVersion})
				}
				return err
			},
		}
		if i%3 == 0 {
			steps = append(steps, func() error {
				err := cms.Delete(ctx, name, metav1.DeleteOptions{})
				if err == nil {
					out = append(out, write{name, ""})
				}
				return err
			})
		}
		for _, s := range steps {
			if err := retry(s); err != nil {
				return out, err
			}
			progress.Add(1)
			if pace > 0 {
				time.Sleep(pace) // not synchronisation: keeps the write rate sane on small machines
			}
		}
	}
	return out, ctx.Err()
}

// checkSeen fails for every acknowledged create/update the handler did not
// see, unless a later synthetic event (gap recovery after a 410) of the same
// object stands for it. It returns how many writes were covered that way.
func checkSeen(t *testing.T, writes []write, events []watch.Event[*corev1.ConfigMap]) (collapsed int) {
	t.Helper()
	seen := map[string]bool{}
	lastSynthetic := map[string]int64{}
	for _, e := range events {
		seen[e.Object.Name+"@"+e.Object.ResourceVersion] = true
		// Synthetic events (gap recovery) and initial ADDED events (the first
		// list) carry an object's latest state and legitimately collapse the
		// writes before it: a write made just before the initial list is
		// delivered as the listed object, not as its own event.
		if e.Synthetic || e.Initial {
			rv, _ := strconv.ParseInt(e.Object.ResourceVersion, 10, 64)
			lastSynthetic[e.Object.Name] = max(lastSynthetic[e.Object.Name], rv)
		}
	}
	for _, w := range writes {
		if w.rv == "" || seen[w.name+"@"+w.rv] {
			continue
		}
		rv, _ := strconv.ParseInt(w.rv, 10, 64)
		if s, ok := lastSynthetic[w.name]; ok && s >= rv {
			collapsed++
			continue
		}
		t.Errorf("write %s@%s never reached the handler", w.name, w.rv)
	}
	return collapsed
}

// TestDisruptions runs the proofs that restart the API server, compact etcd
// or need --min-request-timeout=5 (watches closed every 5-10s) against one
// private control plane, so the shared one is not disturbed.
func TestDisruptions(t *testing.T) {
	penv, err := testenv.Start(t.Context(), testenv.WithAPIServerFlags("--min-request-timeout=5"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := penv.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Run("RestartsDuringWrites", func(t *testing.T) { testRestarts(t, penv) })
	t.Run("ShortWatchTimeouts", func(t *testing.T) { testShortTimeouts(t, penv) })
	t.Run("GapAcrossCompaction", func(t *testing.T) { testGapAcrossCompaction(t, penv) })
	t.Run("BookmarksKeepFilteredWatchFresh", func(t *testing.T) { testBookmarks(t, penv) })
}

// restartGoroutines are the private Env's own goroutines that a restart of
// its API server leaves: the wait for the new child process and the plain
// HTTP/1.1 keep-alive connections of its readiness and etcd clients. The
// watch's own connections are HTTP/2 (TLS) and still checked.
func restartGoroutines() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/kubekit/kubekit/testenv.startProcess.func1"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
	}
}

// Proof 2: the API server restarted twice during 300 writes (the issue's
// 1,000, scaled for CI): every change reaches the handler and the final
// state equals a fresh list.
func testRestarts(t *testing.T, penv *testenv.Env) {
	c := newClient(t, penv.Config())
	verifyNoLeaksExcept(t, restartGoroutines(), c)
	k := kube(t, penv.Config())
	ns := "restarts"
	createNamespace(t, k, ns)
	var logs logCounter
	w, err := watch.New[*corev1.ConfigMap](t.Context(), c, watch.WithNamespace(ns), watch.WithLogger(logs.logger()),
		watch.WithBackoff(fastBackoff()))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := start(t, w, rec.handle)

	var progress atomic.Int64
	type result struct {
		writes []write
		err    error
	}
	done := make(chan result, 1)
	go func() {
		ws, err := writer(t.Context(), k, ns, 300, 0, &progress)
		done <- result{ws, err}
	}()
	for _, at := range []int64{100, 200} {
		waitFor(t, fmt.Sprintf("%d writes", at), func() bool { return progress.Load() >= at })
		if err := penv.RestartAPIServer(context.WithoutCancel(t.Context())); err != nil {
			t.Fatal(err)
		}
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	waitState(t, k, rec, ns)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	events, _ := rec.snapshot()
	collapsed := checkSeen(t, res.writes, events)
	t.Logf("%d writes, %d events, %d writes covered by gap recovery, %d reconnects after errors, %d re-lists after 410",
		len(res.writes), len(events), collapsed, logs.count("watch failed"), logs.count("re-listing"))
}

// Proof 3: with --min-request-timeout=5 the server closes every watch after
// 5-10s; during 20s of writes (the 30s, scaled) the watch is closed
// several times and no event is lost.
func testShortTimeouts(t *testing.T, penv *testenv.Env) {
	c := newClient(t, penv.Config())
	verifyNoLeaks(t, c)
	k := kube(t, penv.Config())
	ns := "timeouts"
	createNamespace(t, k, ns)
	var logs logCounter
	w, err := watch.New[*corev1.ConfigMap](t.Context(), c, watch.WithNamespace(ns), watch.WithLogger(logs.logger()))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := start(t, w, rec.handle)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var progress atomic.Int64
	writes, err := writer(ctx, k, ns, 1<<30, 10*time.Millisecond, &progress)
	if ctx.Err() == nil {
		t.Fatal(err)
	}
	waitState(t, k, rec, ns)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	events, _ := rec.snapshot()
	if n := checkSeen(t, writes, events); n != 0 {
		t.Errorf("%d writes were only recovered by a re-list; want every one from the stream", n)
	}
	ends := logs.count("stream ended")
	if ends < 2 {
		t.Errorf("watch stream ended %d times in 20s, want at least 2 (is --min-request-timeout=5 applied?)", ends)
	}
	t.Logf("%d writes, %d events, %d stream ends", len(writes), len(events), ends)
}

// Proof 6: a gap across compaction. Stop the watcher, create, update and
// delete objects, compact etcd (and restart the API server so its watch
// cache forgets too), resume from the file checkpoint: synthetic DELETED
// for each deleted object, ADDED/MODIFIED for the others, and the final
// state equals a fresh list.
func testGapAcrossCompaction(t *testing.T, penv *testenv.Env) {
	c := newClient(t, penv.Config())
	verifyNoLeaksExcept(t, restartGoroutines(), c)
	k := kube(t, penv.Config())
	ns := "gap"
	createNamespace(t, k, ns)
	ctx := t.Context()
	cms := k.CoreV1().ConfigMaps(ns)
	for i := range 10 {
		if _, err := cms.Create(ctx, cm(ns, fmt.Sprintf("keep-%d", i), nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "cp.json")
	newWatcher := func() *watch.Watcher[*corev1.ConfigMap] {
		cp := fileCheckpoint(t, path)
		w, err := watch.New[*corev1.ConfigMap](t.Context(), c, watch.WithNamespace(ns), watch.WithCheckpoint(cp), watch.WithBackoff(fastBackoff()))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	rec := newRecorder()
	stop := start(t, newWatcher(), rec.handle)
	waitFor(t, "10 initial events", func() bool { return rec.count() >= 10 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	deleted := map[string]bool{}
	for i := range 4 { // deleted
		name := fmt.Sprintf("keep-%d", i)
		if err := cms.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		deleted[name] = true
	}
	modified := map[string]string{}
	for i := 4; i < 7; i++ { // updated twice: one MODIFIED with the latest state
		name := fmt.Sprintf("keep-%d", i)
		for v := range 2 {
			o, err := cms.Update(ctx, cm(ns, name, map[string]string{"v": strconv.Itoa(v)}), metav1.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			modified[name] = o.ResourceVersion
		}
	}
	added := map[string]bool{}
	for i := range 3 { // created, and one created and deleted within the gap (never seen)
		name := fmt.Sprintf("new-%d", i)
		if _, err := cms.Create(ctx, cm(ns, name, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		added[name] = true
	}
	if _, err := cms.Create(ctx, cm(ns, "ephemeral", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "ephemeral", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := penv.Compact(context.WithoutCancel(ctx)); err != nil {
		t.Fatal(err)
	}

	// With gap recovery off, the expired position is an error, and the
	// checkpoint is left as it was.
	cp := fileCheckpoint(t, path)
	strict, err := watch.New[*corev1.ConfigMap](t.Context(), c, watch.WithNamespace(ns), watch.WithCheckpoint(cp), watch.WithGapRecovery(false))
	if err != nil {
		t.Fatal(err)
	}
	strictCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err = strict.Run(strictCtx, func(_ context.Context, e watch.Event[*corev1.ConfigMap]) error {
		t.Errorf("event %s %s with gap recovery off", e.Type, e.Object.Name)
		return nil
	})
	if !errors.Is(err, watch.ErrExpired) || !(apierrors.IsResourceExpired(err) || apierrors.IsGone(err)) {
		t.Fatalf("Run with gap recovery off = %v, want ErrExpired wrapping a 410", err)
	}

	rec2 := newRecorder()
	_, rec2.state = rec.snapshot()
	stop = start(t, newWatcher(), rec2.handle)
	waitFor(t, "10 gap events", func() bool { return rec2.count() >= 10 })
	waitState(t, k, rec2, ns)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	events, _ := rec2.snapshot()
	if len(events) != 10 {
		t.Errorf("got %d events, want 10 (4 DELETED, 3 MODIFIED, 3 ADDED): %v", len(events), events)
	}
	for _, e := range events {
		n := e.Object.Name
		ok := e.Synthetic && !e.Initial
		switch e.Type {
		case watch.Deleted:
			ok = ok && deleted[n] && e.Object.UID != ""
		case watch.Modified:
			ok = ok && modified[n] == e.Object.ResourceVersion
		case watch.Added:
			ok = ok && added[n]
		}
		if !ok {
			t.Errorf("unexpected event %s %s rv=%s synthetic=%v initial=%v", e.Type, n, e.Object.ResourceVersion, e.Synthetic, e.Initial)
		}
	}
}

// Proof 7: a label-filtered watch sees none of heavy unrelated churn, yet
// bookmarks move its checkpoint past it; after etcd is compacted the watch
// keeps reconnecting (every 5-10s here) from that fresh position without a
// 410: gap recovery is off, so a 410 would end Run with an error.
func testBookmarks(t *testing.T, penv *testenv.Env) {
	c := newClient(t, penv.Config())
	verifyNoLeaks(t, c)
	k := kube(t, penv.Config())
	ns := "bookmarks"
	createNamespace(t, k, ns)
	ctx := t.Context()
	cms := k.CoreV1().ConfigMaps(ns)
	rare := cm(ns, "rare-0", nil)
	rare.Labels = map[string]string{"app": "rare"}
	if _, err := cms.Create(ctx, rare, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cp := watch.NewMemoryCheckpoint()
	var logs logCounter
	w, err := watch.New[*corev1.ConfigMap](t.Context(), c, watch.WithNamespace(ns), watch.WithLabelSelector("app=rare"),
		watch.WithCheckpoint(cp), watch.WithGapRecovery(false), watch.WithLogger(logs.logger()))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx, rec.handle) }()
	waitFor(t, "the initial event", func() bool { return rec.count() >= 1 })

	var lastRV int64
	for i := range 300 {
		o, err := cms.Create(ctx, cm(ns, fmt.Sprintf("churn-%d", i), nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		lastRV, _ = strconv.ParseInt(o.ResourceVersion, 10, 64)
	}
	checkpointRV := func() int64 {
		s, err := cp.Load(ctx)
		if err != nil || s == nil {
			return 0
		}
		rv, _ := strconv.ParseInt(s.ResourceVersion, 10, 64)
		return rv
	}
	waitFor(t, "a bookmark to move the checkpoint past the churn", func() bool { return checkpointRV() >= lastRV })
	rev, err := penv.CompactEtcd(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ends := logs.count("stream ended")
	waitFor(t, "two more reconnects after the compaction", func() bool { return logs.count("stream ended") >= ends+2 })
	if got := checkpointRV(); got < lastRV {
		t.Errorf("checkpoint RV went back to %d", got)
	}
	rare.Name = "rare-1"
	if _, err := cms.Create(ctx, rare, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second matching object", func() bool { return rec.count() >= 2 })
	select {
	case err := <-done:
		t.Fatalf("Run ended: %v", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := rec.count(); n != 2 {
		t.Errorf("handler saw %d events, want only the 2 matching ones", n)
	}
	t.Logf("churn up to rv %d, compacted at %d, checkpoint at %d", lastRV, rev, checkpointRV())
}
