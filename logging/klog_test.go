package logging_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"go.uber.org/goleak"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/logging"
)

// These tests change klog's global state, so none of them is parallel and
// each restores klog before it returns.

// route builds a Logger writing to out and routes klog into it.
func route(t *testing.T, out *buffer, opts ...logging.Option) *logging.Logger {
	t.Helper()
	log, err := logging.New(append(opts, logging.WithOutput(out))...)
	if err != nil {
		t.Fatal(err)
	}
	restore, err := log.RouteKlog()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		restore()
		if err := log.Close(); err != nil {
			t.Error(err)
		}
	})
	return log
}

// serverVersion asks the real server for /version with a kubekit client
// built after routing: client-go decides at transport creation whether to
// add its debugging round tripper (klog.V(6).Enabled()).
func serverVersion(t *testing.T, ctx context.Context, cfg *rest.Config, log logr.Logger) {
	t.Helper()
	c, err := client.New(client.WithRESTConfig(cfg), client.WithRateLimit(false), client.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	// client-go's round-tripper wrappers hide CloseIdleConnections from
	// http.Client; utilnet unwraps them.
	defer utilnet.CloseIdleConnectionsFor(c.HTTPClient().Transport)
	if _, err := c.ServerVersion(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestClientGoRequestLines(t *testing.T) {
	// Routing and logging start no goroutines; the client's connections
	// are closed by serverVersion.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	versionURL := regexp.MustCompile(`^https://127\.0\.0\.1:\d+/version$`)
	for _, v := range []int{2, 6} {
		t.Run(fmt.Sprintf("v=%d", v), func(t *testing.T) {
			var out buffer
			file := filepath.Join(t.TempDir(), "app.log")
			log := route(t, &out, logging.WithVerbosity(v), logging.WithFile(file))
			// The context logger carries a value: client-go's round tripper
			// logs with klog.FromContext(req.Context()), so it must show up.
			ctx := klog.NewContext(t.Context(), log.WithValues("test", t.Name()))
			serverVersion(t, ctx, env.Config(), log.Logger)
			if err := log.Sync(); err != nil {
				t.Fatal(err)
			}

			resp := find(lines(t, out.String()), "Response")
			if v < 6 {
				if resp != nil || strings.Contains(out.String(), "/version") {
					t.Fatalf("request logged at v=%d:\n%s", v, out.String())
				}
				return
			}
			if resp == nil {
				t.Fatalf("no Response line at v=6:\n%s", out.String())
			}
			url, _ := resp["url"].(string)
			caller, _ := resp["caller"].(string)
			if resp["level"] != "INFO" || resp["v"] != 6.0 || resp["verb"] != "GET" || !versionURL.MatchString(url) ||
				resp["status"] != "200 OK" || resp["milliseconds"] == nil || resp["test"] != t.Name() ||
				!strings.HasPrefix(caller, "transport/round_trippers.go:") || resp["ts"] == nil {
				t.Fatalf("Response line = %v", resp)
			}
			got, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != out.String() {
				t.Fatalf("log file differs from the stream:\nfile:\n%s\nstream:\n%s", got, out.String())
			}
		})
	}
}

func TestClientGoConsole(t *testing.T) {
	var out buffer
	log := route(t, &out, logging.WithVerbosity(6), logging.WithFormat(logging.FormatConsole))
	serverVersion(t, t.Context(), env.Config(), log.Logger)
	re := regexp.MustCompile(`(?m)^\S+\tINFO\ttransport/round_trippers\.go:\d+\tResponse\t\{"v": 6, "verb": "GET", "url": "https://127\.0\.0\.1:\d+/version", "status": "200 OK", "milliseconds": \d+\}$`)
	if !re.MatchString(out.String()) {
		t.Fatalf("no console Response line:\n%s", out.String())
	}
}

func TestKlogVerbosity(t *testing.T) {
	boom := errors.New("boom")
	for _, v := range []int{0, 2, 4} {
		t.Run(fmt.Sprintf("v=%d", v), func(t *testing.T) {
			var out buffer
			route(t, &out, logging.WithVerbosity(v))
			klog.InfoS("plain", "k", "x")
			klog.V(2).InfoS("two")
			klog.V(4).InfoS("four")
			klog.V(4).ErrorS(boom, "error at V(4)") // gated by V like InfoS
			klog.ErrorS(boom, "failed", "pod", klog.KRef("ns", "p"))
			klog.Infof("printf %d", 7)
			klog.FromContext(t.Context()).V(4).Info("contextual four")
			klog.Background().Info("background")

			ls := lines(t, out.String())
			for msg, level := range map[string]int{"plain": 0, "two": 2, "four": 4, "contextual four": 4, "printf 7": 0, "background": 0} {
				l := find(ls, msg)
				if shown := level <= v; shown != (l != nil) {
					t.Errorf("%q (V(%d)) shown=%v at v=%d:\n%s", msg, level, l != nil, v, out.String())
					continue
				}
				if l != nil && (l["level"] != "INFO" || l["v"] != float64(level) || !strings.HasPrefix(l["caller"].(string), "logging/klog_test.go:")) {
					t.Errorf("%q: %v", msg, l)
				}
			}
			// klog.ErrorS is written at every verbosity.
			e := find(ls, "failed")
			if e == nil || e["level"] != "ERROR" || e["err"] != "boom" || e["stacktrace"] == nil || e["v"] != nil {
				t.Fatalf("ErrorS line = %v:\n%s", e, out.String())
			}
			pod, _ := e["pod"].(map[string]any)
			if pod["namespace"] != "ns" || pod["name"] != "p" || !strings.HasPrefix(e["caller"].(string), "logging/klog_test.go:") {
				t.Errorf("ErrorS fields = %v", e)
			}
			if ve := find(ls, "error at V(4)"); (ve != nil) != (v >= 4) || (ve != nil && ve["err"] != "boom") {
				t.Errorf("klog.V(4).ErrorS at v=%d: %v", v, ve)
			}
		})
	}
}

// TestRestore routes klog into a Logger and checks that restore puts back
// klog's previous logger and verbosity.
func TestRestore(t *testing.T) {
	state := klog.CaptureState()
	defer state.Restore()
	var before []string
	klog.SetLogger(funcr.New(func(prefix, args string) { before = append(before, args) }, funcr.Options{Verbosity: 10}))
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	if err := fs.Set("v", "1"); err != nil {
		t.Fatal(err)
	}

	var out buffer
	log, err := logging.New(logging.WithOutput(&out), logging.WithVerbosity(5))
	if err != nil {
		t.Fatal(err)
	}
	restore, err := log.RouteKlog()
	if err != nil {
		t.Fatal(err)
	}
	if !klog.V(5).Enabled() || klog.V(6).Enabled() {
		t.Fatal("klog verbosity is not 5 while routed")
	}
	klog.InfoS("routed")
	restore()
	restore() // twice is fine
	klog.InfoS("restored")
	if klog.V(2).Enabled() || !klog.V(1).Enabled() {
		t.Fatal("klog verbosity is not back to 1")
	}
	if fs.Lookup("v").Value.String() != "1" {
		t.Fatalf("-v = %s", fs.Lookup("v").Value)
	}
	if !strings.Contains(out.String(), `"msg":"routed"`) || strings.Contains(out.String(), "restored") {
		t.Fatalf("routed output:\n%s", out.String())
	}
	if len(before) != 1 || !strings.Contains(before[0], `"msg"="restored"`) {
		t.Fatalf("previous logger got %q", before)
	}
}

// TestNoBearerTokenAtV10 uses a real ServiceAccount token at the highest
// verbosity client-go knows: curl commands and headers are logged, with the
// Authorization header masked.
func TestNoBearerTokenAtV10(t *testing.T) {
	ctx := t.Context()
	// Create the token before routing: at v >= 8 client-go logs response
	// bodies, and the TokenRequest response body is the token itself.
	admin, err := client.New(client.WithRESTConfig(env.Config()), client.WithRateLimit(false))
	if err != nil {
		t.Fatal(err)
	}
	kube := admin.Kubernetes()
	created, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "logging-token-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns := created.Name
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "reader", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := tr.Status.Token
	if len(token) < 100 {
		t.Fatalf("token %q", token)
	}
	cfg := &rest.Config{Host: env.Host(), BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: env.Config().CAData}}

	for _, format := range []string{logging.FormatJSON, logging.FormatConsole} {
		t.Run(format, func(t *testing.T) {
			var out buffer
			file := filepath.Join(t.TempDir(), "app.log")
			log := route(t, &out, logging.WithVerbosity(10), logging.WithFormat(format), logging.WithFile(file))
			c, err := client.New(client.WithRESTConfig(cfg), client.WithRateLimit(false), client.WithLogger(log.Logger))
			if err != nil {
				t.Fatal(err)
			}
			defer c.HTTPClient().CloseIdleConnections()
			if _, err := c.ServerVersion(ctx); err != nil {
				t.Fatal(err)
			}
			// Forbidden for this ServiceAccount: the error path is logged too.
			if _, err := c.Kubernetes().CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); err == nil {
				t.Fatal("listing secrets as the ServiceAccount succeeded")
			}
			if err := log.Sync(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for name, s := range map[string]string{"stream": out.String(), "file": string(got)} {
				if !strings.Contains(s, "curl -v -X") || !strings.Contains(s, "Bearer <masked>") || !strings.Contains(s, "403 Forbidden") {
					t.Fatalf("%s: no masked curl command or 403 at v=10:\n%s", name, s)
				}
				if strings.Contains(s, token) || strings.Contains(s, token[len(token)-40:]) {
					t.Fatalf("%s: the bearer token appears in the log:\n%s", name, s)
				}
			}
		})
	}
}
