package watch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubekit/kubekit/watch"
)

func sampleState() *watch.State {
	return &watch.State{Resource: "configmaps namespace=\"x\"", ResourceVersion: "42", Objects: []watch.ObjectRef{
		{Namespace: "x", Name: "a", UID: "u1", ResourceVersion: "40"},
		{Name: "cluster-scoped", UID: "u2", ResourceVersion: "41"},
	}}
}

func TestCheckpointsRoundTrip(t *testing.T) {
	fc := fileCheckpoint(t, filepath.Join(t.TempDir(), "cp.json"))
	k := kube(t, env.Config())
	createNamespace(t, k, "watch-cmcp")
	cc, err := watch.NewConfigMapCheckpoint(k, "watch-cmcp", "cp")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		cp   watch.Checkpoint
	}{{"memory", watch.NewMemoryCheckpoint()}, {"file", fc}, {"configmap", cc}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if s, err := tt.cp.Load(ctx); s != nil || err != nil {
				t.Fatalf("empty checkpoint Load = %v, %v; want nil, nil", s, err)
			}
			for _, rv := range []string{"42", "43"} { // create, then replace
				want := sampleState()
				want.ResourceVersion = rv
				if err := tt.cp.Save(ctx, want); err != nil {
					t.Fatal(err)
				}
				got, err := tt.cp.Load(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got.ResourceVersion != rv || got.Resource != want.Resource || !slices.Equal(sortedRefs(got.Objects), sortedRefs(want.Objects)) {
					t.Fatalf("Load = %+v, want %+v", got, want)
				}
			}
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := tt.cp.Load(cancelled); !errors.Is(err, context.Canceled) {
				t.Errorf("Load(cancelled) = %v", err)
			}
			if err := tt.cp.Save(cancelled, sampleState()); !errors.Is(err, context.Canceled) {
				t.Errorf("Save(cancelled) = %v", err)
			}
		})
	}
	entries, _ := os.ReadDir(filepath.Dir(fc.Path()))
	if len(entries) != 2 {
		t.Errorf("checkpoint directory holds %d entries, want only the file and its log (no temp files left)", len(entries))
	}
}

func TestDecodeStateErrors(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"not json", "garbage", "not a kubekit watch checkpoint"},
		{"truncated", `{"version":1,"resource":"x","resourceVersion":"1","objects":[`, "not a kubekit watch checkpoint"},
		{"future version", `{"version":2,"resource":"x","resourceVersion":"1","objects":[]}`, "format version 2"},
		{"no rv", `{"version":1,"resource":"x","resourceVersion":"","objects":[]}`, "missing resource or resourceVersion"},
		{"bad object", `{"version":1,"resource":"x","resourceVersion":"1","objects":[{"n":""}]}`, "object 0"},
		{"unknown field", `{"version":1,"resource":"x","resourceVersion":"1","extra":1}`, "unknown field"},
		{"trailing", `{"version":1,"resource":"x","resourceVersion":"1"} {}`, "trailing data"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := watch.DecodeState([]byte(tt.in))
			if !errors.Is(err, watch.ErrBadCheckpoint) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeState(%q) = %v, want ErrBadCheckpoint mentioning %q", tt.in, err, tt.want)
			}
		})
	}
}

func FuzzDecodeState(f *testing.F) {
	good, _ := watch.EncodeState(sampleState())
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"resource":"r","resourceVersion":"1","objects":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := watch.DecodeState(b)
		if err != nil {
			if !errors.Is(err, watch.ErrBadCheckpoint) {
				t.Fatalf("error %v does not match ErrBadCheckpoint", err)
			}
			return
		}
		again, err := watch.EncodeState(s)
		if err != nil {
			t.Fatal(err)
		}
		if want := marshalState(t, s); !bytes.Equal(again, want) {
			t.Fatalf("EncodeState = %s\njson.Marshal = %s", again, want)
		}
		s2, err := watch.DecodeState(again)
		if err != nil || s2.ResourceVersion != s.ResourceVersion || len(s2.Objects) != len(s.Objects) {
			t.Fatalf("round trip of %q: %v", b, err)
		}
	})
}

// marshalState is the format by the book: encoding/json on the documented
// fields, as EncodeState must write it, byte for byte.
func marshalState(t *testing.T, s *watch.State) []byte {
	t.Helper()
	type ref struct {
		Namespace       string `json:"ns,omitempty"`
		Name            string `json:"n"`
		UID             string `json:"u"`
		ResourceVersion string `json:"rv"`
	}
	refs := []ref{}
	for _, o := range s.Objects {
		refs = append(refs, ref{o.Namespace, o.Name, string(o.UID), o.ResourceVersion})
	}
	b, err := json.Marshal(struct {
		Version         int    `json:"version"`
		Resource        string `json:"resource"`
		ResourceVersion string `json:"resourceVersion"`
		Objects         []ref  `json:"objects"`
	}{watch.CheckpointFormatVersion, s.Resource, s.ResourceVersion, refs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeStateMatchesEncodingJSON(t *testing.T) {
	odd := []string{"", "plain-name.1", `quote"back\\slash`, "<tag>&amp;", "tab\tnew\nline\x00", "ünïcödé ☃", "bad utf8 \xff\xfe", "\u2028\u2029", "\x7f"}
	for _, tt := range []*watch.State{
		{Resource: "configmaps", ResourceVersion: "1"}, // nil Objects: "objects":[]
		{Resource: "configmaps", ResourceVersion: "1", Objects: []watch.ObjectRef{}},
		sampleState(),
		{Resource: `pods namespace="" labelSelector="app in (a,b),!beta" fieldSelector="spec.nodeName!=n&x"`, ResourceVersion: "9"},
	} {
		if got, want := must(watch.EncodeState(tt)), marshalState(t, tt); !bytes.Equal(got, want) {
			t.Errorf("EncodeState = %s\njson.Marshal = %s", got, want)
		}
	}
	for _, a := range odd {
		for _, b := range odd {
			s := &watch.State{Resource: a + "r", ResourceVersion: b + "1", Objects: []watch.ObjectRef{{Namespace: a, Name: b + "n", UID: types.UID(a), ResourceVersion: b + "2"}, {Name: a + "n", UID: types.UID(b), ResourceVersion: "3"}}}
			got, want := must(watch.EncodeState(s)), marshalState(t, s)
			if !bytes.Equal(got, want) {
				t.Fatalf("EncodeState = %s\njson.Marshal = %s", got, want)
			}
			if _, err := watch.DecodeState(got); err != nil {
				t.Fatalf("DecodeState(EncodeState(%+v)): %v", s, err)
			}
		}
	}
	// Every byte value at every position of a string.
	for c := range 256 {
		for pos := range 17 {
			name := []byte("abcdefghijklmnopq")
			name[pos] = byte(c)
			s := &watch.State{Resource: "r", ResourceVersion: "1", Objects: []watch.ObjectRef{{Name: string(name), UID: "u", ResourceVersion: "1"}}}
			if got, want := must(watch.EncodeState(s)), marshalState(t, s); !bytes.Equal(got, want) {
				t.Fatalf("byte %#x at %d: EncodeState = %s\njson.Marshal = %s", c, pos, got, want)
			}
		}
	}
	if _, err := watch.EncodeState(nil); err == nil {
		t.Error("EncodeState(nil) = nil error")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// crashingCheckpoint wraps a checkpoint and drops every save after crash(),
// like a process killed before its final save.
// It passes the saves of changes through too, so the file checkpoint's
// log is what the restart reads.
type crashingCheckpoint struct {
	*watch.FileCheckpoint
	crashed atomic.Bool
	changes atomic.Int64 // saves of changes passed through
}

func (c *crashingCheckpoint) Save(ctx context.Context, s *watch.State) error {
	if c.crashed.Load() {
		return nil
	}
	return c.FileCheckpoint.Save(ctx, s)
}

func (c *crashingCheckpoint) SaveChanges(ctx context.Context, ch *watch.Changes) error {
	if c.crashed.Load() {
		return nil
	}
	c.changes.Add(1)
	return c.FileCheckpoint.SaveChanges(ctx, ch)
}

// Proof 5: an abrupt stop (no final save): the restart delivers every
// missed change, and repeats only events of the last unsaved batch.
func TestResumeAfterAbruptStop(t *testing.T) {
	c := newClient(t, env.Config())
	verifyNoLeaks(t, c)
	k := kube(t, env.Config())
	ns := "watch-abrupt"
	createNamespace(t, k, ns)
	ctx := t.Context()
	cms := k.CoreV1().ConfigMaps(ns)
	path := filepath.Join(t.TempDir(), "cp.json")
	// The interval is long against the 5 unsaved events at the end (they
	// must stay unsaved) and short enough to start the second batch's save
	// if the first was still running when its 10th event came.
	const batch, interval = 10, 2 * time.Second
	newWatcher := func(cp watch.Checkpoint) *watch.Watcher[*corev1.ConfigMap] {
		w, err := watch.New[*corev1.ConfigMap](t.Context(), c, watch.WithNamespace(ns), watch.WithCheckpoint(cp), watch.WithCheckpointBatch(batch, interval))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	fc := fileCheckpoint(t, path)
	crash := &crashingCheckpoint{FileCheckpoint: fc}
	rec := newRecorder()
	stop := start(t, newWatcher(crash), rec.handle)
	create := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := cms.Create(ctx, cm(ns, fmt.Sprintf("first-%d", i), nil), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	create(0, 20) // 2 batches, saved as changes (after the full save of the first list)
	waitFor(t, "20 events", func() bool { return rec.count() >= 20 })
	waitFor(t, "both batches saved", func() bool { return crash.changes.Load() >= 2 })
	create(20, 25) // 5 unsaved events
	waitFor(t, "25 events", func() bool { return rec.count() >= 25 })
	crash.crashed.Store(true)
	if crash.changes.Load() == 0 {
		t.Error("no save of changes reached the file: the test does not cover the checkpoint log")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	missed := map[string]bool{}
	for i := range 30 {
		o, err := cms.Create(ctx, cm(ns, fmt.Sprintf("second-%d", i), nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		missed[o.Name+"@"+o.ResourceVersion] = true
	}
	rec2 := newRecorder()
	stop = start(t, newWatcher(fc), rec2.handle)
	waitFor(t, "30 missed events", func() bool {
		events, _ := rec2.snapshot()
		n := 0
		for _, e := range events {
			if missed[e.Object.Name+"@"+e.Object.ResourceVersion] {
				n++
			}
		}
		return n == len(missed)
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	first, _ := rec.snapshot()
	seenBefore := map[string]bool{}
	for _, e := range first {
		seenBefore[e.Object.Name+"@"+e.Object.ResourceVersion] = true
	}
	events, _ := rec2.snapshot()
	dups := 0
	for _, e := range events {
		k := e.Object.Name + "@" + e.Object.ResourceVersion
		switch {
		case missed[k]:
		case seenBefore[k]:
			dups++
		default:
			t.Errorf("unexpected event %s %s", e.Type, k)
		}
	}
	if dups < 1 || dups > batch {
		t.Errorf("%d events delivered again, want between 1 and the batch size %d (the unsaved tail)", dups, batch)
	}
	t.Logf("%d duplicates after the abrupt stop (batch %d)", dups, batch)
}

// Proof 8: a corrupt checkpoint and a checkpoint of another watch are clear
// errors; WithResetBadCheckpoint(true) turns the first into a fresh list.
func TestBadCheckpoints(t *testing.T) {
	c := newClient(t, env.Config())
	verifyNoLeaks(t, c)
	k := kube(t, env.Config())
	ns := "watch-badcp"
	createNamespace(t, k, ns)
	if _, err := k.CoreV1().ConfigMaps(ns).Create(t.Context(), cm(ns, "x", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.json")
	if err := os.WriteFile(corrupt, []byte(`{"version":1,"resource":"configm`), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.json")
	w, err := watch.NewForResource(t.Context(), c, schema.GroupVersionResource{Resource: "secrets"}, watch.WithNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := watch.EncodeState(&watch.State{Resource: w.Identity(), ResourceVersion: "1"})
	if err := os.WriteFile(other, b, 0o600); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "dir.json")
	if err := os.Mkdir(unreadable, 0o700); err != nil {
		t.Fatal(err)
	}
	run := func(path string, opts ...watch.Option) (int, error) {
		cp := fileCheckpoint(t, path)
		w, err := watch.New[*corev1.ConfigMap](t.Context(), c, append([]watch.Option{watch.WithNamespace(ns), watch.WithCheckpoint(cp)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		rec := newRecorder()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		rec.fail = func(watch.Event[*corev1.ConfigMap]) error { cancel(); return nil }
		err = w.Run(ctx, rec.handle)
		events, _ := rec.snapshot()
		for _, e := range events {
			if !e.Synthetic || e.Type != watch.Added {
				t.Errorf("after a reset: %s synthetic=%v, want a synthetic ADDED", e.Type, e.Synthetic)
			}
		}
		return len(events), err
	}
	for _, tt := range []struct {
		name, path string
		is         error
		want       string
	}{
		{"corrupt", corrupt, watch.ErrBadCheckpoint, "corrupt.json"},
		{"unreadable", unreadable, watch.ErrBadCheckpoint, "dir.json"},
		{"other resource", other, watch.ErrCheckpointMismatch, "secrets"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := run(tt.path)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) || n != 0 {
				t.Fatalf("Run = %v after %d events, want %v mentioning %q and no event", err, n, tt.is, tt.want)
			}
			t.Log(err)
		})
	}
	t.Run("reset corrupt", func(t *testing.T) {
		if n, err := run(corrupt, watch.WithResetBadCheckpoint(true)); err != nil || n != 1 {
			t.Fatalf("Run = %v after %d events, want nil after 1 synthetic ADDED", err, n)
		}
		if _, err := watch.NewFileCheckpoint(corrupt); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(corrupt)
		if _, err := watch.DecodeState(b); err != nil {
			t.Fatalf("the reset did not rewrite the checkpoint: %v", err)
		}
	})
	t.Run("reset keeps mismatch an error", func(t *testing.T) {
		if _, err := run(other, watch.WithResetBadCheckpoint(true)); !errors.Is(err, watch.ErrCheckpointMismatch) {
			t.Fatalf("Run = %v, want ErrCheckpointMismatch", err)
		}
	})
}

// A handler error is retried with backoff and the checkpoint never passes
// the failing event; past the retry limit Run returns a *HandlerError.
func TestHandlerRetries(t *testing.T) {
	c := newClient(t, env.Config())
	verifyNoLeaks(t, c)
	k := kube(t, env.Config())
	ns := "watch-retries"
	createNamespace(t, k, ns)
	ctx := t.Context()
	cms := k.CoreV1().ConfigMaps(ns)
	ok1, err := cms.Create(ctx, cm(ns, "ok", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, cm(ns, "poison", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	fast := watch.WithHandlerBackoff(fastBackoff())
	cp := watch.NewMemoryCheckpoint()
	w, err := watch.New[*corev1.ConfigMap](t.Context(), c, watch.WithNamespace(ns), watch.WithCheckpoint(cp), watch.WithHandlerRetries(2), fast,
		watch.WithInitialEvents(false))
	if err != nil {
		t.Fatal(err)
	}
	// Start after the list, then make "ok" and "poison" events.
	rec := newRecorder()
	var attempts atomic.Int32
	rec.fail = func(e watch.Event[*corev1.ConfigMap]) error {
		if e.Object.Name == "poison" {
			attempts.Add(1)
			return errors.New("cannot handle poison")
		}
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, rec.handle) }()
	waitFor(t, "the first checkpoint", func() bool { s, _ := cp.Load(ctx); return s != nil })
	ok1.Data = map[string]string{"v": "2"}
	okUpd, err := cms.Update(ctx, ok1, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Update(ctx, cm(ns, "poison", map[string]string{"v": "2"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not give up on the poison event")
	}
	var he *watch.HandlerError
	if !errors.As(runErr, &he) || he.Attempts != 3 || he.Key != ns+"/poison" || attempts.Load() != 3 {
		t.Fatalf("Run = %v (%d handler calls), want a HandlerError after 3 attempts on %s/poison", runErr, attempts.Load(), ns)
	}
	s, err := cp.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.ResourceVersion != okUpd.ResourceVersion {
		t.Errorf("checkpoint at %s, want %s: the last event handled before the poison", s.ResourceVersion, okUpd.ResourceVersion)
	}

	// A handler that fails twice and then succeeds: the event is delivered.
	var calls atomic.Int32
	rec2 := newRecorder()
	rec2.fail = func(watch.Event[*corev1.ConfigMap]) error {
		if calls.Add(1) <= 2 {
			return errors.New("transient")
		}
		return nil
	}
	w2, err := watch.New[*corev1.ConfigMap](t.Context(), c, watch.WithNamespace(ns), watch.WithCheckpoint(cp), fast)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, w2, rec2.handle)
	waitFor(t, "the poison event after transient failures", func() bool { return rec2.count() >= 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if events, _ := rec2.snapshot(); events[0].Object.Name != "poison" || calls.Load() != 3 {
		t.Errorf("first event %s after %d calls, want poison after 3", events[0].Object.Name, calls.Load())
	}
}

// 401 and 403 end Run with a clear error instead of retrying forever.
func TestForbiddenIsFatal(t *testing.T) {
	cfg, err := env.UserConfig("nobody")
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, env.Config()) // discovery with admin rights
	uc := newClient(t, cfg)
	verifyNoLeaks(t, c, uc)
	_ = c
	w, err := watch.New[*corev1.ConfigMap](t.Context(), uc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	err = w.Run(ctx, func(context.Context, watch.Event[*corev1.ConfigMap]) error { return nil })
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "list and watch permission") {
		t.Fatalf("Run = %v, want a Forbidden error naming the missing permission", err)
	}
	bad := rest401(t)
	w, err = watch.New[*corev1.ConfigMap](t.Context(), newClient(t, bad))
	if err == nil { // discovery itself may already fail with 401
		err = w.Run(ctx, func(context.Context, watch.Event[*corev1.ConfigMap]) error { return nil })
	}
	if !apierrors.IsUnauthorized(err) && !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("with a bad token: %v, want Unauthorized", err)
	}
}

// A stop that races with a batch save is still a clean stop: the final save
// writes the last handled event, and nothing is logged as a failed save.
func TestStopDuringBatchSave(t *testing.T) {
	c := newClient(t, env.Config())
	verifyNoLeaks(t, c)
	k := kube(t, env.Config())
	ns := "watch-stop-save"
	createNamespace(t, k, ns)
	cp := watch.NewMemoryCheckpoint() // its Save fails on a cancelled context
	var logs logCounter
	w, err := watch.New[*corev1.ConfigMap](t.Context(), c, watch.WithNamespace(ns), watch.WithCheckpoint(cp),
		watch.WithCheckpointBatch(1, time.Hour), watch.WithLogger(logs.logger()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var lastRV atomic.Value
	done := make(chan error, 1)
	go func() {
		done <- w.Run(ctx, func(_ context.Context, e watch.Event[*corev1.ConfigMap]) error {
			if e.Object.Name == "last" {
				lastRV.Store(e.Object.ResourceVersion)
				cancel() // the event is handled, and a batch save (every event) is due
			}
			return nil
		})
	}()
	waitFor(t, "the initial list saved", func() bool { s, _ := cp.Load(t.Context()); return s != nil })
	if _, err := k.CoreV1().ConfigMaps(ns).Create(t.Context(), cm(ns, "last", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil after a clean stop", err)
	}
	s, err := cp.Load(t.Context())
	if err != nil || s == nil || s.ResourceVersion != lastRV.Load() {
		t.Fatalf("checkpoint = %+v, %v; want the resourceVersion of the last handled event %v", s, err, lastRV.Load())
	}
	if n := logs.count("saving the checkpoint failed"); n != 0 {
		t.Errorf("%d failed-save log lines on a clean stop: %q", n, logs.lines)
	}
}
