package client_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/kubekit/kubekit/client"
)

// isolate makes the default source search see nothing from the machine.
func isolate(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	return home
}

const twoContexts = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://127.0.0.1:1"}
- name: b
  cluster: {server: "https://127.0.0.1:2"}
users:
- name: u
  user: {token: secret}
contexts:
- name: ctx-a
  context: {cluster: a, user: u, namespace: team-a}
- name: ctx-b
  context: {cluster: b, user: u}
current-context: ctx-a
`

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewBadInput(t *testing.T) {
	home := isolate(t)
	good := writeFile(t, home, "good.yaml", twoContexts)
	malformed := writeFile(t, home, "bad.yaml", "apiVersion: v1\nkind: Config\nclusters: [ {name: x\n")
	tests := []struct {
		name string
		opts []client.Option
		want []string
	}{
		{"missing kubeconfig", []client.Option{client.WithKubeconfig(filepath.Join(home, "nope"))}, []string{"nope", "no such file"}},
		{"empty kubeconfig path", []client.Option{client.WithKubeconfig("")}, []string{`client: WithKubeconfig(""): the path is empty`}},
		{"malformed kubeconfig", []client.Option{client.WithKubeconfig(malformed)}, []string{"bad.yaml"}},
		{"unknown context", []client.Option{client.WithKubeconfig(good), client.WithKubeContext("prod")}, []string{`no context "prod"`, "ctx-a, ctx-b"}},
		{"in-cluster outside a cluster", []client.Option{client.WithInCluster()}, []string{"in-cluster", "run inside a Pod"}},
		{"negative timeout", []client.Option{client.WithKubeconfig(good), client.WithTimeout(-time.Second)}, []string{"WithTimeout(-1s)", ">= 0"}},
		{"zero dial timeout", []client.Option{client.WithKubeconfig(good), client.WithDialTimeout(0)}, []string{"WithDialTimeout(0s)"}},
		{"negative TLS timeout", []client.Option{client.WithKubeconfig(good), client.WithTLSHandshakeTimeout(-1)}, []string{"WithTLSHandshakeTimeout"}},
		{"negative QPS", []client.Option{client.WithKubeconfig(good), client.WithQPS(-1)}, []string{"WithQPS(-1)", "WithRateLimit(false)"}},
		{"negative burst", []client.Option{client.WithKubeconfig(good), client.WithBurst(-5)}, []string{"WithBurst(-5)"}},
		{"two sources", []client.Option{client.WithKubeconfig(good), client.WithInCluster()}, []string{"choose one of"}},
		{"context with rest config", []client.Option{client.WithRESTConfig(&rest.Config{Host: "https://x"}), client.WithKubeContext("a")}, []string{"WithRESTConfig"}},
		{"rate limit conflict", []client.Option{client.WithKubeconfig(good), client.WithRateLimit(false), client.WithQPS(10)}, []string{"conflicts"}},
		{"nothing found", nil, []string{"no Kubernetes configuration found", "$KUBECONFIG (unset)", filepath.Join(home, ".kube", "config"), "KUBERNETES_SERVICE_HOST unset"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.New(tt.opts...)
			if err == nil {
				t.Fatalf("New succeeded (%s), want an error", c.Source())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestSourceResolution(t *testing.T) {
	home := isolate(t)
	cfgA := writeFile(t, home, "a.yaml", twoContexts)
	// A second file only changes the current context: merged like kubectl,
	// the first file to set a field wins, so ctx-a stays current.
	cfgB := writeFile(t, home, "b.yaml", "apiVersion: v1\nkind: Config\ncurrent-context: ctx-b\n")
	tests := []struct {
		name      string
		setup     func(t *testing.T)
		opts      []client.Option
		host, ns  string
		sourceHas string
	}{
		{"explicit file", nil, []client.Option{client.WithKubeconfig(cfgA)}, "https://127.0.0.1:1", "team-a", "a.yaml"},
		{"explicit context", nil, []client.Option{client.WithKubeconfig(cfgA), client.WithKubeContext("ctx-b")}, "https://127.0.0.1:2", "default", `"ctx-b"`},
		{"$KUBECONFIG merged", func(t *testing.T) {
			t.Setenv("KUBECONFIG", cfgA+string(filepath.ListSeparator)+cfgB)
		}, nil, "https://127.0.0.1:1", "team-a", "$KUBECONFIG"},
		{"$KUBECONFIG with a missing file", func(t *testing.T) {
			t.Setenv("KUBECONFIG", filepath.Join(home, "missing")+string(filepath.ListSeparator)+cfgA)
		}, []client.Option{client.WithKubeContext("ctx-b")}, "https://127.0.0.1:2", "default", "$KUBECONFIG"},
		{"home kubeconfig", func(t *testing.T) {
			writeFile(t, home, ".kube/config", twoContexts)
			t.Cleanup(func() { _ = os.Remove(filepath.Join(home, ".kube", "config")) })
		}, nil, "https://127.0.0.1:1", "team-a", filepath.Join(".kube", "config")},
		{"rest config", nil, []client.Option{client.WithRESTConfig(&rest.Config{Host: "https://10.1.2.3"})}, "https://10.1.2.3", "default", "rest.Config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			c, err := client.New(tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Config().Host; got != tt.host {
				t.Errorf("host = %q, want %q", got, tt.host)
			}
			if got := c.Namespace(); got != tt.ns {
				t.Errorf("namespace = %q, want %q", got, tt.ns)
			}
			if !strings.Contains(c.Source(), tt.sourceHas) {
				t.Errorf("source = %q, want it to mention %q", c.Source(), tt.sourceHas)
			}
		})
	}
}

func TestInClusterFallbackNeedsServiceAccount(t *testing.T) {
	isolate(t)
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "443")
	// The host is set but this machine has no service account token, so the
	// fallback is taken and fails with client-go's reason.
	_, err := client.New()
	if err == nil || !strings.Contains(err.Error(), "in-cluster configuration") {
		t.Fatalf("err = %v, want an in-cluster configuration error", err)
	}
	_, err = client.New(client.WithKubeContext("x"))
	if err == nil || !strings.Contains(err.Error(), `context "x" requested`) {
		t.Fatalf("err = %v, want a context error", err)
	}
}

func TestConfigSettings(t *testing.T) {
	base := &rest.Config{Host: "https://127.0.0.1:1", QPS: 5, Burst: 10}
	c, err := client.New(client.WithRESTConfig(base), client.WithTimeout(7*time.Second), client.WithUserAgent("kubekit-test/1"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.Config()
	if cfg.QPS != 5 || cfg.Burst != 10 {
		t.Errorf("QPS/Burst = %v/%v, want the given rest.Config's 5/10 kept", cfg.QPS, cfg.Burst)
	}
	if cfg.Timeout != 7*time.Second || cfg.UserAgent != "kubekit-test/1" {
		t.Errorf("timeout/user agent = %v/%q", cfg.Timeout, cfg.UserAgent)
	}
	if base.Timeout != 0 || base.UserAgent != "" {
		t.Errorf("New modified the caller's rest.Config: %+v", base)
	}
	c, err = client.New(client.WithRESTConfig(base), client.WithQPS(20), client.WithBurst(40))
	if err != nil {
		t.Fatal(err)
	}
	if cfg := c.Config(); cfg.QPS != 20 || cfg.Burst != 40 {
		t.Errorf("QPS/Burst = %v/%v, want the options' 20/40", cfg.QPS, cfg.Burst)
	}
	c, err = client.New(client.WithRESTConfig(&rest.Config{Host: "https://x"}), client.WithRateLimit(false))
	if err != nil {
		t.Fatal(err)
	}
	if q := c.Config().QPS; q >= 0 {
		t.Errorf("QPS with rate limit disabled = %v, want negative (no limiter)", q)
	}
	c, err = client.New(client.WithRESTConfig(&rest.Config{Host: "https://x"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg := c.Config(); cfg.QPS != client.DefaultQPS || cfg.Burst != client.DefaultBurst || cfg.Timeout != 0 {
		t.Errorf("defaults: QPS %v Burst %v Timeout %v", cfg.QPS, cfg.Burst, cfg.Timeout)
	}
}

// serverWithCA starts a TLS server whose handler blocks until released and
// returns a rest.Config that trusts it.
func blockingTLSServer(t *testing.T) *rest.Config {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}
}

// silentListener accepts TCP connections and never says a word.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

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

// TestTimeouts proves each timeout against a local listener. Bounds are
// generous (several times the configured value) but far below what would
// happen without the option (client-go: 10s handshake, no request bound).
func TestTimeouts(t *testing.T) {
	tests := []struct {
		name     string
		cfg      func(t *testing.T) *rest.Config
		opts     []client.Option
		deadline time.Duration // ctx deadline for the call, 0 = none
		within   time.Duration
		want     func(error) bool
		wantText string
	}{
		{
			name:     "closed port fails fast",
			cfg:      func(t *testing.T) *rest.Config { return &rest.Config{Host: "https://" + closedPort(t)} },
			within:   3 * time.Second,
			wantText: "connection refused",
		},
		{
			name: "no TLS from the server hits the handshake timeout",
			cfg: func(t *testing.T) *rest.Config {
				return &rest.Config{Host: "https://" + silentListener(t), TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
			},
			opts:     []client.Option{client.WithTLSHandshakeTimeout(300 * time.Millisecond)},
			within:   4 * time.Second,
			wantText: "TLS handshake timeout",
		},
		{
			name:     "silent TLS server hits WithTimeout",
			cfg:      blockingTLSServer,
			opts:     []client.Option{client.WithTimeout(400 * time.Millisecond)},
			within:   4 * time.Second,
			wantText: "timeout=400ms", // client-go turns rest.Config.Timeout into a request deadline
			want:     func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
		},
		{
			name:     "silent TLS server hits the ctx deadline",
			cfg:      blockingTLSServer,
			opts:     []client.Option{client.WithTimeout(time.Hour)},
			deadline: 400 * time.Millisecond,
			within:   4 * time.Second,
			want:     func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.New(append([]client.Option{client.WithRESTConfig(tt.cfg(t))}, tt.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			start := time.Now()
			_, err = c.ServerVersion(ctx)
			took := time.Since(start)
			if err == nil {
				t.Fatal("ServerVersion succeeded against a broken server")
			}
			if took > tt.within {
				t.Errorf("failed after %v, want within %v: %v", took, tt.within, err)
			}
			if tt.wantText != "" && !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not mention %q", err, tt.wantText)
			}
			if tt.want != nil && !tt.want(err) {
				t.Errorf("unexpected error %v", err)
			}
		})
	}
}

func TestServerVersionCancelledContext(t *testing.T) {
	c, err := client.New(client.WithRESTConfig(blockingTLSServer(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.ServerVersion(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// A server that answers /version with nothing gets an error that says so
// (not a JSON decode error), and one that names the deadline when the
// context ended.
func TestServerVersionEmptyResponse(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c, err := client.New(client.WithRESTConfig(&rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if _, err := c.ServerVersion(t.Context()); err == nil || !strings.Contains(err.Error(), "empty response") {
		t.Fatalf("err = %v, want one naming the empty response", err)
	}
}

func TestRESTClientForNeedsVersion(t *testing.T) {
	c, err := client.New(client.WithRESTConfig(&rest.Config{Host: "https://x"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RESTClientFor(schema.GroupVersion{Group: "apps"}); err == nil || !strings.Contains(err.Error(), "needs a version") {
		t.Fatalf("err = %v", err)
	}
}

func TestStreamingConfigDropsTimeout(t *testing.T) {
	c, err := client.New(client.WithRESTConfig(&rest.Config{Host: "https://x"}), client.WithTimeout(7*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	cfg, hc := c.StreamingConfig()
	if cfg.Timeout != 0 || hc.Timeout != 0 || hc.Transport != c.HTTPClient().Transport {
		t.Fatalf("streaming config timeout %v, client timeout %v, shared pool %v", cfg.Timeout, hc.Timeout, hc.Transport == c.HTTPClient().Transport)
	}
	if c.Config().Timeout != 7*time.Second {
		t.Fatalf("Config().Timeout = %v, want 7s kept", c.Config().Timeout)
	}
}
