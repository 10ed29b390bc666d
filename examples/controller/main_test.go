package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/kubekit/kubekit/internal/exampletest"
	"github.com/kubekit/kubekit/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.RunMain(m, func(e *testenv.Env) { env = e }))
}

// lockedBuffer is an io.Writer the test can read while run writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.buf.String()), "\n")
}

// running is a controller started by startController.
type running struct {
	out, errOut *lockedBuffer
	cancel      context.CancelFunc
	errc        chan error
	seen        int // lines already matched by waitLine
}

func startController(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{out: &lockedBuffer{}, errOut: &lockedBuffer{}, cancel: cancel, errc: make(chan error, 1)}
	go func() {
		r.errc <- run(ctx, append([]string{"--kubeconfig", env.KubeconfigPath()}, args...), r.out, r.errOut)
	}()
	t.Cleanup(func() { r.stop(t) })
	r.waitLine(t, "controller: watching ConfigMaps labelled kubekit.dev/mirror=true with")
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.errc:
		if err != nil {
			t.Errorf("run = %v (stderr:\n%s)", err, strings.Join(r.errOut.lines(), "\n"))
		}
	case <-time.After(30 * time.Second):
		t.Error("run did not return after cancel")
	}
}

// waitLine waits for a line containing want after the lines matched so far.
func (r *running) waitLine(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		lines := r.out.lines()
		for i := r.seen; i < len(lines); i++ {
			if strings.Contains(lines[i], want) {
				r.seen = i + 1
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line %q after line %d; stdout:\n%s\nstderr:\n%s", want, r.seen, strings.Join(lines, "\n"), strings.Join(r.errOut.lines(), "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func namespace(t *testing.T, kube kubernetes.Interface, prefix string) string {
	t.Helper()
	ns := prefix + "-" + rand.String(5)
	if _, err := kube.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// eventually polls fn until it returns nil.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mirrorIs(t *testing.T, kube kubernetes.Interface, ns, name, source, value string) {
	t.Helper()
	eventually(t, fmt.Sprintf("mirror %s/%s", ns, name), func() error {
		cm, err := kube.CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cm.Data["k"] != value || cm.Annotations[MirrorOfAnnotation] != source || cm.Labels[MirroredLabel] != "true" || cm.Labels[MirrorLabel] != "" || cm.Labels["app"] != "demo" {
			return fmt.Errorf("mirror is %+v %+v %v", cm.Labels, cm.Annotations, cm.Data)
		}
		return nil
	})
}

func mirrorGone(t *testing.T, kube kubernetes.Interface, ns, name string) {
	t.Helper()
	eventually(t, fmt.Sprintf("mirror %s/%s deleted", ns, name), func() error {
		_, err := kube.CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (err %v)", err)
	})
}

func TestMirrorsConfigMaps(t *testing.T) {
	kube := exampletest.Kube(t, env.Config())
	cms := func(ns string) interface {
		Create(context.Context, *corev1.ConfigMap, metav1.CreateOptions) (*corev1.ConfigMap, error)
		Update(context.Context, *corev1.ConfigMap, metav1.UpdateOptions) (*corev1.ConfigMap, error)
		Get(context.Context, string, metav1.GetOptions) (*corev1.ConfigMap, error)
		Delete(context.Context, string, metav1.DeleteOptions) error
	} {
		return kube.CoreV1().ConfigMaps(ns)
	}
	src, dst, dst2 := namespace(t, kube, "src"), namespace(t, kube, "dst"), namespace(t, kube, "dst2")
	// Namespaces cannot be deleted here (no namespace controller), so remove
	// the sources: controllers started by later tests watch all namespaces.
	t.Cleanup(func() {
		for _, name := range []string{"a", "taken", "self", "plain"} {
			_ = cms(src).Delete(context.WithoutCancel(t.Context()), name, metav1.DeleteOptions{})
		}
	})

	// An orphan: a mirror whose source was deleted while the controller was
	// down. The mirror informer's initial list finds it.
	orphan := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "gone", Namespace: dst,
		Labels:      map[string]string{MirroredLabel: "true"},
		Annotations: map[string]string{MirrorOfAnnotation: src + "/gone"}}}
	if _, err := cms(dst).Create(t.Context(), orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Not a mirror: the controller must never overwrite it.
	bystander := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: dst}, Data: map[string]string{"k": "mine"}}
	if _, err := cms(dst).Create(t.Context(), bystander, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	r := startController(t, "--workers", "3")
	r.waitLine(t, "reconciled "+src+"/gone: deleted")
	mirrorGone(t, kube, dst, "gone")

	// Create a labelled, annotated source: mirrored.
	a := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: src,
		Labels:      map[string]string{MirrorLabel: "true", "app": "demo"},
		Annotations: map[string]string{MirrorToAnnotation: dst}},
		Data: map[string]string{"k": "v1"}}
	a, err := cms(src).Create(t.Context(), a, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.waitLine(t, "reconciled "+src+"/a: created")
	mirrorIs(t, kube, dst, "a", src+"/a", "v1")

	// Change the data: updated.
	a.Data["k"] = "v2"
	if a, err = cms(src).Update(t.Context(), a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitLine(t, "reconciled "+src+"/a: updated")
	mirrorIs(t, kube, dst, "a", src+"/a", "v2")

	// Someone edits the mirror: put back.
	m, err := cms(dst).Get(t.Context(), "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Data["k"] = "tampered"
	if _, err := cms(dst).Update(t.Context(), m, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitLine(t, "reconciled "+src+"/a: updated")
	mirrorIs(t, kube, dst, "a", src+"/a", "v2")

	// Point it at another namespace: the old mirror goes, a new one comes.
	a.Annotations[MirrorToAnnotation] = dst2
	if a, err = cms(src).Update(t.Context(), a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitLine(t, "reconciled "+src+"/a: created")
	mirrorIs(t, kube, dst2, "a", src+"/a", "v2")
	mirrorGone(t, kube, dst, "a")

	// Remove the label: the source leaves the informer; the mirror goes.
	delete(a.Labels, MirrorLabel)
	if a, err = cms(src).Update(t.Context(), a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitLine(t, "reconciled "+src+"/a: deleted")
	mirrorGone(t, kube, dst2, "a")

	// Label it again, then delete the source.
	a.Labels[MirrorLabel] = "true"
	if _, err = cms(src).Update(t.Context(), a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitLine(t, "reconciled "+src+"/a: created")
	mirrorIs(t, kube, dst2, "a", src+"/a", "v2")
	if err := cms(src).Delete(t.Context(), "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitLine(t, "reconciled "+src+"/a: deleted")
	mirrorGone(t, kube, dst2, "a")

	// A source whose mirror name is taken by a ConfigMap that is not a mirror:
	// an error on stderr, retried, and the bystander is left alone.
	taken := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: src,
		Labels:      map[string]string{MirrorLabel: "true", "app": "demo"},
		Annotations: map[string]string{MirrorToAnnotation: dst}},
		Data: map[string]string{"k": "theirs"}}
	if _, err := cms(src).Create(t.Context(), taken, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "error about the bystander", func() error {
		if l := strings.Join(r.errOut.lines(), "\n"); !strings.Contains(l, "is not a mirror of "+src+"/taken: not overwriting it") {
			return fmt.Errorf("stderr:\n%s", l)
		}
		return nil
	})
	if cm, err := cms(dst).Get(t.Context(), "taken", metav1.GetOptions{}); err != nil || cm.Data["k"] != "mine" {
		t.Fatalf("bystander = %v, %v; want it untouched", cm, err)
	}

	// A source pointing at its own namespace would overwrite itself: refused
	// with a log line naming the annotation.
	self := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "self", Namespace: src,
		Labels:      map[string]string{MirrorLabel: "true"},
		Annotations: map[string]string{MirrorToAnnotation: src}}}
	if _, err := cms(src).Create(t.Context(), self, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitLine(t, "reconciled "+src+"/self: unchanged")
	if l := strings.Join(r.errOut.lines(), "\n"); !strings.Contains(l, "Ignoring invalid mirror target") || !strings.Contains(l, MirrorToAnnotation) {
		t.Errorf("no log line about the invalid target:\n%s", l)
	}

	// An unlabelled ConfigMap is never reconciled.
	plain := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: src, Annotations: map[string]string{MirrorToAnnotation: dst}}}
	if _, err := cms(src).Create(t.Context(), plain, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.stop(t)
	for _, l := range r.out.lines() {
		if strings.Contains(l, "/plain") {
			t.Errorf("unlabelled ConfigMap was reconciled: %q", l)
		}
		if !strings.HasPrefix(l, "reconciled ") && !strings.HasPrefix(l, "controller: ") {
			t.Errorf("unexpected output line %q", l)
		}
	}
}

func TestRestartDeletesOrphans(t *testing.T) {
	kube := exampletest.Kube(t, env.Config())
	// Checked after the cleanups below (LIFO): every goroutine run started
	// has stopped; only HTTP keep-alive connections may remain.
	ignoreBefore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		goleak.VerifyNone(t, ignoreBefore,
			goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
			goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
	})
	src, dst := namespace(t, kube, "src"), namespace(t, kube, "dst")
	b := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: src,
		Labels:      map[string]string{MirrorLabel: "true", "app": "demo"},
		Annotations: map[string]string{MirrorToAnnotation: dst}},
		Data: map[string]string{"k": "v"}}
	if _, err := kube.CoreV1().ConfigMaps(src).Create(t.Context(), b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := startController(t, "--workers", "1")
	r.waitLine(t, "reconciled "+src+"/b: created")
	mirrorIs(t, kube, dst, "b", src+"/b", "v")
	r.stop(t)
	before, err := kube.CoreV1().ConfigMaps(dst).Get(t.Context(), "b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// A restart with everything up to date writes nothing.
	r = startController(t, "--workers", "1")
	r.waitLine(t, "reconciled "+src+"/b: unchanged")
	r.stop(t)
	after, err := kube.CoreV1().ConfigMaps(dst).Get(t.Context(), "b", metav1.GetOptions{})
	if err != nil || after.ResourceVersion != before.ResourceVersion {
		t.Fatalf("mirror rewritten on restart: resourceVersion %s -> %v (err %v)", before.ResourceVersion, after.ResourceVersion, err)
	}

	// Source deleted while the controller is down: the restarted controller
	// deletes the orphaned mirror.
	if err := kube.CoreV1().ConfigMaps(src).Delete(t.Context(), "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	r = startController(t)
	r.waitLine(t, "reconciled "+src+"/b: deleted")
	mirrorGone(t, kube, dst, "b")
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"zero workers", []string{"--kubeconfig", env.KubeconfigPath(), "--workers", "0"}, "--workers=0"},
		{"unknown context", []string{"--kubeconfig", env.KubeconfigPath(), "--context", "nope"}, `no context "nope"`},
		{"missing kubeconfig", []string{"--kubeconfig", "/nonexistent/kc"}, "no such file"},
		{"extra args", []string{"x"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(t.Context(), tt.args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error()+errOut.String(), tt.want) {
				t.Fatalf("err = %v (stderr %q), want it to mention %q", err, errOut.String(), tt.want)
			}
		})
	}
}
