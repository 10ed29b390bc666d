package watch_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/watch"
)

// readOnlyDir returns a directory nothing can be created in, not even by
// root: immutable (chattr +i) where the file system supports it, else a
// path whose parent is a file.
func readOnlyDir(t *testing.T) (dir string, makeReadOnly func()) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "cp")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, func() {
		t.Helper()
		if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err == nil {
			t.Cleanup(func() { _ = exec.Command("chattr", "-i", dir).Run() })
		} else {
			t.Logf("chattr +i: %v: %s; replacing the directory with a file", err, out)
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o600); err == nil {
			t.Fatal("the read-only directory can be written")
		}
	}
}

// A checkpoint directory that cannot be written: every save fails, each is
// logged as a save failure (not as a failed list) and retried, and Run
// stops after WithSaveRetryTimeout with an error naming the file and the fix.
func TestSaveFailsOnReadOnlyDirectory(t *testing.T) {
	c := newClient(t, env.Config())
	verifyNoLeaks(t, c)
	k := kube(t, env.Config())
	ns := "watch-readonly"
	createNamespace(t, k, ns)
	if _, err := k.CoreV1().ConfigMaps(ns).Create(t.Context(), cm(ns, "a", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir, makeReadOnly := readOnlyDir(t)
	path := filepath.Join(dir, "cp.json")
	cp := fileCheckpoint(t, path)
	makeReadOnly()
	var logs logCounter
	const timeout = 2 * time.Second
	w, err := watch.New[*corev1.ConfigMap](t.Context(), c, watch.WithNamespace(ns), watch.WithCheckpoint(cp),
		watch.WithSaveRetryTimeout(timeout), watch.WithBackoff(fastBackoff()), watch.WithLogger(logs.logger()),
		watch.WithCheckpointBatch(watch.DefaultCheckpointEvents, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	handled := 0
	started := time.Now()
	err = w.Run(ctx, func(context.Context, watch.Event[*corev1.ConfigMap]) error { handled++; return nil })
	took := time.Since(started)
	if !errors.Is(err, watch.ErrSaveFailed) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "make the checkpoint writable") ||
		!strings.Contains(err.Error(), "WithSaveRetryTimeout") {
		t.Fatalf("Run = %v, want ErrSaveFailed naming %s, the fix and WithSaveRetryTimeout", err, path)
	}
	if took < timeout || took > 30*time.Second {
		t.Errorf("Run gave up after %v, want just past WithSaveRetryTimeout(%v)", took, timeout)
	}
	if handled != 1 {
		t.Errorf("%d events handled, want the 1 listed object", handled)
	}
	if n := logs.count("saving the checkpoint failed; retrying"); n < 2 {
		t.Errorf("%d save failures logged, want retries logged as save failures", n)
	}
	if n := logs.count("list failed"); n != 0 {
		t.Errorf("a save failure was logged as a failed list %d times", n)
	}
}

// bloatedCheckpoint adds objects to every state it saves, so a real
// ConfigMap checkpoint gets a state over what it may hold.
type bloatedCheckpoint struct {
	*watch.ConfigMapCheckpoint
	extra int
	saves int
}

func (b *bloatedCheckpoint) Save(ctx context.Context, s *watch.State) error {
	b.saves++
	s2 := *s
	s2.Objects = append([]watch.ObjectRef(nil), s.Objects...)
	s2.Objects = append(s2.Objects, realisticState(b.extra).Objects...)
	return b.ConfigMapCheckpoint.Save(ctx, &s2)
}

// A state too large for its ConfigMaps (here one: WithMaxShards(0)) fails
// at once, with the size, the object count and the fix, before any
// request; Run stops at its first save.
func TestConfigMapStateTooLarge(t *testing.T) {
	c := newClient(t, env.Config())
	verifyNoLeaks(t, c)
	k := kube(t, env.Config())
	ns := "watch-toolarge"
	createNamespace(t, k, ns)
	cc, err := watch.NewConfigMapCheckpoint(k, ns, "cp", watch.WithMaxShards(0))
	if err != nil {
		t.Fatal(err)
	}
	big := &bloatedCheckpoint{ConfigMapCheckpoint: cc, extra: 40000}
	err = big.Save(t.Context(), &watch.State{Resource: "configmaps", ResourceVersion: "1"})
	if !errors.Is(err, watch.ErrStateTooLarge) || !strings.Contains(err.Error(), "40000 objects") || !strings.Contains(err.Error(), "bytes compressed") ||
		!strings.Contains(err.Error(), "FileCheckpoint") || !strings.Contains(err.Error(), "WithMaxShards") {
		t.Fatalf("Save of 40,000 objects = %v, want ErrStateTooLarge with the size, the object count and the fix", err)
	}
	if _, err := k.CoreV1().ConfigMaps(ns).Get(t.Context(), "cp", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the ConfigMap after a too-large save: %v, want NotFound (no request made)", err)
	}

	w, err := watch.New[*corev1.ConfigMap](t.Context(), c, watch.WithNamespace(ns), watch.WithCheckpoint(big))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	big.saves = 0
	started := time.Now()
	err = w.Run(ctx, func(context.Context, watch.Event[*corev1.ConfigMap]) error { return nil })
	if !errors.Is(err, watch.ErrSaveFailed) || !errors.Is(err, watch.ErrStateTooLarge) || !strings.Contains(err.Error(), "ConfigMap "+ns+"/cp") {
		t.Fatalf("Run = %v, want ErrSaveFailed and ErrStateTooLarge naming the ConfigMap", err)
	}
	if took := time.Since(started); took > 30*time.Second || big.saves > 2 {
		t.Errorf("Run stopped after %v and %d saves, want at once (the first save and the last one on the way out)", took, big.saves)
	}
}

// A panicking handler is recovered and retried like a failing one; Run
// then returns a *HandlerError wrapping ErrHandlerPanic, the stack is logged.
func TestHandlerPanic(t *testing.T) {
	c := newClient(t, env.Config())
	verifyNoLeaks(t, c)
	k := kube(t, env.Config())
	ns := "watch-panic"
	createNamespace(t, k, ns)
	if _, err := k.CoreV1().ConfigMaps(ns).Create(t.Context(), cm(ns, "boom", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var logs logCounter
	w, err := watch.New[*corev1.ConfigMap](t.Context(), c, watch.WithNamespace(ns), watch.WithHandlerRetries(1),
		watch.WithHandlerBackoff(wait.Backoff{Duration: time.Millisecond, Factor: 1}), watch.WithLogger(logs.logger()))
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	err = w.Run(t.Context(), func(_ context.Context, e watch.Event[*corev1.ConfigMap]) error {
		calls++
		var m map[string]string
		//lint:ignore SA5000 the handler panics on purpose
		m[e.Object.Name] = "x" // assignment to a nil map
		return nil
	})
	var he *watch.HandlerError
	if !errors.As(err, &he) || !errors.Is(err, watch.ErrHandlerPanic) || he.Key != ns+"/boom" || he.Attempts != 2 || !strings.Contains(err.Error(), "nil map") {
		t.Fatalf("Run = %v, want a *HandlerError for %s/boom after 2 attempts wrapping ErrHandlerPanic and the panic value", err, ns)
	}
	if calls != 2 {
		t.Errorf("handler called %d times, want 2", calls)
	}
	if n := logs.count(`"msg"="handler panicked"`); n != 2 {
		t.Errorf("%d panics logged, want 2", n)
	}
	if n := logs.count("runtime/debug.Stack"); n != 2 {
		t.Errorf("%d panics logged with a stack, want 2", n)
	}
}

// New and NewForResource take their ctx to discovery: a server that refuses
// connections reads as one (not "not served"), a cancelled ctx stops them.
func TestNewTalksToTheServerWithCtx(t *testing.T) {
	c := newClient(t, env.Config())
	verifyNoLeaks(t, c)
	down, err := client.New(client.WithRESTConfig(&rest.Config{Host: "https://127.0.0.1:1"}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = watch.New[*corev1.Pod](t.Context(), down)
	if err == nil || !strings.Contains(err.Error(), "cannot ask the API server at https://127.0.0.1:1") || strings.Contains(err.Error(), "not served") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Errorf("New against a closed port = %v, want a connection error naming the server", err)
	}
	_, err = watch.NewForResource(t.Context(), down, schema.GroupVersionResource{Group: "apps", Resource: "deployments"})
	if err == nil || !strings.Contains(err.Error(), "cannot ask the API server") || strings.Contains(err.Error(), "not served") {
		t.Errorf("NewForResource against a closed port = %v, want a connection error", err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := watch.New[*corev1.Pod](cancelled, c); !errors.Is(err, context.Canceled) {
		t.Errorf("New(cancelled) = %v, want context.Canceled", err)
	}
	// A kind the server does not serve still says so, as a no-match error.
	_, err = watch.NewForResource(t.Context(), c, schema.GroupVersionResource{Group: "example.com", Version: "v9", Resource: "nopes"})
	if !meta.IsNoMatchError(err) || !strings.Contains(err.Error(), "not served") {
		t.Errorf("NewForResource(nopes) = %v, want a no-match error saying not served", err)
	}
	// Singular names and the preferred version resolve.
	w, err := watch.NewForResource(t.Context(), c, schema.GroupVersionResource{Group: "apps", Resource: "deployment"})
	if err != nil || w.Resource() != (schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}) {
		t.Errorf("NewForResource(deployment.apps) = %v, %v; want apps/v1 deployments", w, err)
	}
}
