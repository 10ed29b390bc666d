package informer_test

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/informer"
	"github.com/kubekit/kubekit/testenv"
)

var env *testenv.Env

// TestMain starts one real control plane for the package and points
// $KUBECONFIG at it, so the examples run against it too.
func TestMain(m *testing.M) {
	os.Exit(testenv.RunMain(m, func(e *testenv.Env) {
		env = e
		_ = os.Setenv("KUBECONFIG", e.KubeconfigPath())
	}))
}

// verifyNoLeaks snapshots the goroutines running now and, at cleanup, fails
// if new ones are left. Call it first in a test, with the test's clients:
// cleanups run last-in first-out, so it runs after the factory's Shutdown.
// It closes the clients' idle keep-alive connections (net/http goroutines
// owned by the client's connection pool, not by the informers) until
// none is left or 10s pass: a watch stream cancelled by Shutdown becomes
// idle only a moment later.
func verifyNoLeaks(t *testing.T, clients ...*client.Client) {
	t.Helper()
	opts := []goleak.Option{goleak.IgnoreCurrent()}
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

// newClient builds a kubekit client for the shared env.
func newClient(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	return newClientFor(t, env.Config(), opts...)
}

// newClientFor is newClient for another rest.Config.
func newClientFor(t *testing.T, cfg *rest.Config, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(append([]client.Option{client.WithRESTConfig(cfg), client.WithRateLimit(false)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newFactory builds a factory and shuts it down at cleanup.
func newFactory(t *testing.T, c *client.Client, opts ...informer.Option) *informer.Factory {
	t.Helper()
	f, err := informer.New(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Shutdown)
	return f
}

var nsCounter atomic.Int64

// newNamespace creates a namespace with a unique name. Namespaces are never
// deleted: without a controller-manager they would stay Terminating.
func newNamespace(t *testing.T, c *client.Client) string {
	t.Helper()
	name := fmt.Sprintf("inf-%d-%d", time.Now().UnixNano()%1e9, nsCounter.Add(1))
	_, err := c.Kubernetes().CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "default"}}
	if _, err := c.Kubernetes().CoreV1().ServiceAccounts(name).Create(t.Context(), sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// pod returns an unscheduled Pod that can be created in a namespace without
// a default ServiceAccount.
func pod(ns, name string, lbls map[string]string) *corev1.Pod {
	no := false
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: &no,
			Containers:                   []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
}

func createPod(t *testing.T, c *client.Client, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	out, err := c.Kubernetes().CoreV1().Pods(p.Namespace).Create(t.Context(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", p.Namespace, p.Name, err)
	}
	return out
}

// eventually polls cond every 20ms until it returns nil or 30s pass.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 30s: %v", what, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
