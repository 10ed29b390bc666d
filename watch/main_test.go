package watch_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/testenv"
	"github.com/kubekit/kubekit/watch"
)

var env *testenv.Env

// TestMain starts one real control plane for the package and points
// $KUBECONFIG at it, so the examples run against it too. Tests that restart
// the API server, compact etcd or need special flags start a private one.
func TestMain(m *testing.M) {
	os.Exit(testenv.RunMain(m, func(e *testenv.Env) {
		env = e
		_ = os.Setenv("KUBECONFIG", e.KubeconfigPath())
	}))
}

// verifyNoLeaks snapshots the goroutines running now and, at cleanup, fails
// if new ones are left. It closes the clients' idle keep-alive connections
// (net/http goroutines of the connection pool, not of the watch) until none
// is left or 10s pass. Call it first so its cleanup runs last.
func verifyNoLeaks(t *testing.T, clients ...*client.Client) {
	t.Helper()
	verifyNoLeaksExcept(t, nil, clients...)
}

// verifyNoLeaksExcept is verifyNoLeaks with extra goleak options.
func verifyNoLeaksExcept(t *testing.T, extra []goleak.Option, clients ...*client.Client) {
	t.Helper()
	opts := append([]goleak.Option{goleak.IgnoreCurrent()}, extra...)
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			for _, c := range clients {
				utilnet.CloseIdleConnectionsFor(c.HTTPClient().Transport)
			}
			if goleak.Find(opts...) == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		goleak.VerifyNone(t, opts...)
	})
}

func newClient(t *testing.T, cfg *rest.Config) *client.Client {
	t.Helper()
	c, err := client.New(client.WithRESTConfig(cfg), client.WithRateLimit(false))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newClientB is newClient for benchmarks.
func newClientB(cfg *rest.Config) (*client.Client, error) {
	return client.New(client.WithRESTConfig(cfg), client.WithRateLimit(false))
}

// fileCheckpoint returns a FileCheckpoint at path.
func fileCheckpoint(tb testing.TB, path string) *watch.FileCheckpoint {
	tb.Helper()
	fc, err := watch.NewFileCheckpoint(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fc
}

func kube(t testing.TB, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k, err := kubernetes.NewForConfigAndClient(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { utilnet.CloseIdleConnectionsFor(hc.Transport) })
	return k
}

func createNamespace(t *testing.T, k kubernetes.Interface, name string) {
	t.Helper()
	if _, err := k.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// recorder is a handler that keeps every event and applies it to a map,
// so the final state can be compared with a fresh list.
type recorder struct {
	mu     sync.Mutex
	events []watch.Event[*corev1.ConfigMap]
	state  map[string]string // ns/name -> resourceVersion
	fail   func(watch.Event[*corev1.ConfigMap]) error
}

func newRecorder() *recorder { return &recorder{state: map[string]string{}} }

func (r *recorder) handle(_ context.Context, e watch.Event[*corev1.ConfigMap]) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(e); err != nil {
			return err
		}
	}
	r.events = append(r.events, e)
	k := e.Object.Namespace + "/" + e.Object.Name
	if e.Type == watch.Deleted {
		delete(r.state, k)
	} else {
		r.state[k] = e.Object.ResourceVersion
	}
	return nil
}

func (r *recorder) snapshot() ([]watch.Event[*corev1.ConfigMap], map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events), maps.Clone(r.state)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// listState is a fresh list of the ConfigMaps in ns: ns/name -> resourceVersion.
func listState(t *testing.T, k kubernetes.Interface, ns string) map[string]string {
	t.Helper()
	l, err := k.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, cm := range l.Items {
		m[cm.Namespace+"/"+cm.Name] = cm.ResourceVersion
	}
	return m
}

// waitFor polls cond until it holds or 60s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 60s waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitState waits until the recorder's state equals a fresh list of ns.
func waitState(t *testing.T, k kubernetes.Interface, r *recorder, ns string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		want := listState(t, k, ns)
		_, got := r.snapshot()
		if maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("handler state differs from a fresh list after 60s:\n%s", diffStates(got, want))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func diffStates(got, want map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			fmt.Fprintf(&b, "  %s: got rv %q, list has %q\n", k, got[k], want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "  %s: got rv %q, not in the list\n", k, got[k])
		}
	}
	return b.String()
}

// start runs w in the background; stop cancels it and returns Run's error.
func start[T watch.Object](t *testing.T, w *watch.Watcher[T], h watch.Handler[T]) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, h) }()
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(60 * time.Second):
			return fmt.Errorf("Run did not return within 60s of cancel")
		}
	})
	t.Cleanup(func() { _ = stop() })
	return stop
}

func cm(ns, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

// fastBackoff reconnects quickly, for tests that restart the API server.
func fastBackoff() wait.Backoff {
	return wait.Backoff{Duration: 50 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: 100, Cap: time.Second}
}

// rest401 is the env's config with a token the API server rejects.
func rest401(t *testing.T) *rest.Config {
	t.Helper()
	cfg := rest.AnonymousClientConfig(env.Config())
	cfg.BearerToken = "not-a-valid-token"
	return cfg
}
