package informer_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"

	"github.com/kubekit/kubekit/informer"
)

// closedPort returns an address nothing listens on: connections are refused.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestBadInputs tries bad inputs on every entry point: each gives a non-nil
// error within a bounded time, without a panic, naming what was wrong and how
// to fix it.
func TestBadInputs(t *testing.T) {
	c := newClient(t)
	refused := newClientFor(t, &rest.Config{Host: "https://" + closedPort(t)})
	verifyNoLeaks(t, c, refused)
	f := newFactory(t, c)
	fr := newFactory(t, refused)
	pods, err := informer.For[*corev1.Pod](t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	newErr := func(opts ...informer.Option) func() error {
		return func() error { _, err := informer.New(c, opts...); return err }
	}
	tests := []struct {
		name string
		call func() error
		want []string
		not  []string
		is   error
	}{
		{"WithNamespaces without arguments", newErr(informer.WithNamespaces()), []string{"WithNamespaces(): no namespace given", "omit the option to watch all namespaces"}, nil, nil},
		{"WithNamespaces empty name", newErr(informer.WithNamespaces("")), []string{`WithNamespaces("")`, "omit WithNamespaces"}, nil, nil},
		{"bad label selector", newErr(informer.WithLabelSelector("a in (b")), []string{`WithLabelSelector("a in (b")`, "e.g."}, nil, nil},
		{"bad field selector", newErr(informer.WithFieldSelector("metadata.name")), []string{`WithFieldSelector("metadata.name")`, "spec.nodeName=node-1"}, nil, nil},
		{"negative resync", newErr(informer.WithResync(-time.Hour)), []string{"WithResync(-1h0m0s)", "use 0 to disable resync"}, nil, nil},
		{"nil client", func() error { _, err := informer.New(nil); return err }, []string{"New(nil)", "client.New"}, nil, nil},
		{"For with nil factory", func() error { _, err := informer.For[*corev1.Pod](t.Context(), nil); return err }, []string{"For(ctx, nil)", "informer.New"}, nil, nil},
		{"ForResource with nil factory", func() error {
			_, err := informer.ForResource(t.Context(), nil, schema.GroupVersionResource{Resource: "pods"})
			return err
		}, []string{"ForResource(ctx, nil, gvr)"}, nil, nil},
		{"For against a refusing server", func() error { _, err := informer.For[*corev1.ConfigMap](t.Context(), fr); return err },
			[]string{"For[*v1.ConfigMap]", "connection refused", "check the server is reachable"}, []string{"not served"}, nil},
		{"ForResource against a refusing server", func() error {
			_, err := informer.ForResource(t.Context(), fr, schema.GroupVersionResource{Version: "v1", Resource: "configmaps"})
			return err
		}, []string{"ForResource(configmaps/v1)", "connection refused"}, []string{"not served"}, nil},
		{"For on cancelled context", func() error { _, err := informer.For[*corev1.Secret](cancelled, fr); return err }, nil, []string{"not served"}, context.Canceled},
		{"AddIndex duplicate in one call", func() error { return pods.AddIndex(informer.ByLabel("a"), informer.ByLabel("a")) },
			[]string{`index "label:a" given twice in one call`}, nil, nil},
		{"AddIndex nothing", func() error { return pods.AddIndex() }, []string{"no index given", "ByLabel"}, nil, nil},
		{"AddIndex existing", func() error {
			return pods.AddIndex(informer.Index{Name: informer.IndexNamespace, Func: func(any) ([]string, error) { return nil, nil }})
		},
			[]string{`index "namespace" exists already`}, nil, nil},
		{"WaitForSync before Start", func() error { return f.WaitForSync(t.Context()) }, nil, nil, informer.ErrNotStarted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				defer func() {
					if p := recover(); p != nil {
						done <- errors.New("panic")
						t.Errorf("panicked: %v", p)
					}
				}()
				done <- tt.call()
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("did not return within 20s")
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q says %q", err, w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
		})
	}
	// A failed AddIndex adds nothing.
	if _, err := pods.Lister().ByIndex(informer.LabelIndexName("a"), "x"); !errors.Is(err, informer.ErrUnknownIndex) {
		t.Errorf("after a rejected AddIndex, ByIndex = %v, want ErrUnknownIndex", err)
	}
}

// TestWaitForSyncKeepsWaitingOnTransientErrors: a 503 on the list is
// transient, so WaitForSync waits until ctx ends and then names the error.
func TestWaitForSyncKeepsWaitingOnTransientErrors(t *testing.T) {
	cfg := env.Config()
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = rt
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/configmaps") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"try later","reason":"ServiceUnavailable","code":503}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	c := newClientFor(t, &rest.Config{Host: srv.URL})
	verifyNoLeaks(t, c)
	t.Cleanup(func() { // after Shutdown, before the leak check
		srv.CloseClientConnections()
		srv.Close()
		utilnet.CloseIdleConnectionsFor(rt)
	})
	f := newFactory(t, c)
	if _, err := informer.For[*corev1.ConfigMap](t.Context(), f); err != nil {
		t.Fatal(err)
	}
	f.Start(t.Context())
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	err = f.WaitForSync(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "configmaps (all namespaces)") || !strings.Contains(err.Error(), "try later") {
		t.Fatalf("WaitForSync = %v, want a deadline error naming configmaps and the 503", err)
	}
	if informer.Permanent(apierrors.NewServiceUnavailable("x")) || !informer.Permanent(apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("no"))) {
		t.Fatal("Permanent: 503 must be transient and 403 permanent")
	}
}
