package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/kubekit/kubekit/client"
)

// zeros is an endless input without a single "---": /dev/zero as a reader.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// bounded runs f in a goroutine and fails the test if it panics or does not
// return within d.
func bounded(t *testing.T, d time.Duration, f func() error) error {
	t.Helper()
	type result struct {
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{panic: p}
			}
		}()
		done <- result{err: f()}
	}()
	select {
	case r := <-done:
		if r.panic != nil {
			t.Fatalf("panicked: %v", r.panic)
		}
		return r.err
	case <-time.After(d):
		t.Fatalf("did not return within %v", d)
		return nil
	}
}

const missingCluster = `apiVersion: v1
kind: Config
clusters:
- name: real
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: secret}
contexts:
- name: dev
  context: {cluster: gone, user: u}
- name: nouser
  context: {cluster: real, user: ghost}
current-context: dev
`

const missingCurrent = `apiVersion: v1
kind: Config
clusters:
- name: real
  cluster: {server: "https://127.0.0.1:1"}
contexts:
- name: dev
  context: {cluster: real}
current-context: prod
`

const ftpServer = `apiVersion: v1
kind: Config
clusters:
- name: real
  cluster: {server: "ftp://127.0.0.1:21"}
contexts:
- name: dev
  context: {cluster: real}
current-context: dev
`

// TestBadInputs tries the bad inputs of issue 18 and others on every entry
// point of the package: each must give a non-nil error within a bounded time,
// without a panic, naming what was wrong and how to fix it.
func TestBadInputs(t *testing.T) {
	home := isolate(t)
	kc := func(name, data string) string { return writeFile(t, home, name, data) }
	noCluster := kc("nocluster.yaml", missingCluster)
	noCurrent := kc("nocurrent.yaml", missingCurrent)
	ftp := kc("ftp.yaml", ftpServer)
	emptyDir := t.TempDir()
	onlyComments := kc("comments.yaml", "# nothing here\n---\n")
	c, err := client.New(client.WithRESTConfig(&rest.Config{Host: "https://127.0.0.1:1"}))
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	var nilList client.ListFunc[*corev1.ConfigMapList]
	cms := func(context.Context, metav1.ListOptions) (*corev1.ConfigMapList, error) {
		return &corev1.ConfigMapList{}, nil
	}
	newErr := func(opts ...client.Option) func() error {
		return func() error { _, err := client.New(opts...); return err }
	}
	tests := []struct {
		name string
		call func() error
		want []string
		is   error
	}{
		{"nil rest config", newErr(client.WithRESTConfig(nil)), []string{"WithRESTConfig(nil)", "pass a *rest.Config"}, nil},
		{"rest config without host", newErr(client.WithRESTConfig(&rest.Config{})), []string{"WithRESTConfig", "Host is empty", "set rest.Config.Host"}, nil},
		{"ftp URL in rest config", newErr(client.WithRESTConfig(&rest.Config{Host: "ftp://example.com"})), []string{`scheme "ftp"`, "use https://"}, nil},
		{"ftp URL in kubeconfig", newErr(client.WithKubeconfig(ftp)), []string{ftp, `scheme "ftp"`}, nil},
		{"user agent with newline", newErr(client.WithRESTConfig(&rest.Config{Host: "https://x"}), client.WithUserAgent("a\nb")), []string{`WithUserAgent("a\nb")`, "control character", "remove newlines"}, nil},
		{"rest config user agent with CR", newErr(client.WithRESTConfig(&rest.Config{Host: "https://x", UserAgent: "a\rb"})), []string{"UserAgent", "control character"}, nil},
		{"context names missing cluster", newErr(client.WithKubeconfig(noCluster)), []string{`context "dev" names cluster "gone"`, "clusters: real", "set-context dev --cluster"}, nil},
		{"context names missing user", newErr(client.WithKubeconfig(noCluster), client.WithKubeContext("nouser")), []string{`context "nouser" names user "ghost"`, "--user"}, nil},
		{"current context missing", newErr(client.WithKubeconfig(noCurrent)), []string{`current-context "prod" is not defined`, "dev", "use-context"}, nil},
		{"negative QPS", newErr(client.WithRESTConfig(&rest.Config{Host: "https://x"}), client.WithQPS(-1)), []string{"WithQPS(-1)"}, nil},
		{"nil list function", func() error { return firstErr(client.List[*corev1.ConfigMap](t.Context(), nilList)) }, []string{"List: the list function is nil", "cs.CoreV1()"}, nil},
		{"nil list function to Collect", func() error { _, err := client.Collect[*corev1.ConfigMap](t.Context(), nilList); return err }, []string{"Collect: the list function is nil"}, nil},
		{"nil list function to Count", func() error { _, err := client.Count(t.Context(), nilList); return err }, []string{"Count: the list function is nil"}, nil},
		{"nil dynamic resource", func() error { return firstErr(client.ListDynamic(t.Context(), nil)) }, []string{"ListDynamic", "nil", "c.Dynamic().Resource(gvr)"}, nil},
		{"bad label selector", func() error {
			return firstErr(client.List[*corev1.ConfigMap](t.Context(), cms, client.LabelSelector("a in (b")))
		}, []string{`LabelSelector("a in (b")`, "app=web"}, nil},
		{"bad field selector", func() error {
			return firstErr(client.List[*corev1.ConfigMap](t.Context(), cms, client.FieldSelector("metadata.name")))
		}, []string{`FieldSelector("metadata.name")`, "spec.nodeName=node-1"}, nil},
		{"negative page size", func() error { return firstErr(client.List[*corev1.ConfigMap](t.Context(), cms, client.PageSize(-1))) }, []string{"PageSize(-1)"}, nil},
		{"list on cancelled context", func() error { return firstErr(client.List[*corev1.ConfigMap](cancelled, cms)) }, nil, context.Canceled},
		{"endless reader without ---", func() error { _, err := client.DecodeManifests(t.Context(), zeros{}, "zeros"); return err }, []string{`manifest "zeros" document 1`, "over 67108864 bytes in total", "MaxInputSize"}, client.ErrInputTooLarge},
		{"/dev/zero", func() error { _, err := client.ReadManifests(t.Context(), []string{"/dev/zero"}); return err }, []string{`"/dev/zero"`, "MaxInputSize"}, client.ErrInputTooLarge},
		{"endless stdin with small cap", func() error {
			_, err := client.ReadManifests(t.Context(), []string{"-"}, client.Stdin(zeros{}), client.MaxInputSize(1<<20))
			return err
		}, []string{`manifest "-"`, "over 1048576 bytes"}, client.ErrInputTooLarge},
		{"endless input, cancelled", func() error {
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			_, err := client.DecodeManifests(ctx, slowZeros{}, "slow", client.MaxInputSize(1<<40))
			return err
		}, []string{`decode "slow"`}, context.DeadlineExceeded},
		{"pipe that never writes, cancelled", func() error {
			r, w, err := os.Pipe()
			if err != nil {
				return err
			}
			defer func() { _ = r.Close(); _ = w.Close() }()
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			_, err = client.ReadManifests(ctx, []string{"-"}, client.Stdin(r))
			return err
		}, []string{`"-"`}, context.DeadlineExceeded},
		{"zero input cap", func() error {
			_, err := client.DecodeManifests(t.Context(), strings.NewReader(""), "x", client.MaxInputSize(0))
			return err
		}, []string{"MaxInputSize(0)", "must be positive"}, nil},
		{"negative document cap", func() error {
			_, err := client.DecodeManifests(t.Context(), strings.NewReader(""), "x", client.MaxDocumentSize(-1))
			return err
		}, []string{"MaxDocumentSize(-1)"}, nil},
		{"empty directory", func() error { _, err := client.ReadManifests(t.Context(), []string{emptyDir}); return err }, []string{"no objects passed to apply", emptyDir, "Recursive(true)"}, client.ErrNoObjects},
		{"file of comments", func() error { _, err := client.ReadManifests(t.Context(), []string{onlyComments}); return err }, []string{"no objects passed to apply"}, client.ErrNoObjects},
		{"decode on cancelled context", func() error { _, err := client.DecodeManifests(cancelled, zeros{}, "z"); return err }, nil, context.Canceled},
		{"zero establish timeout", func() error {
			_, err := c.ApplyManifests(t.Context(), nil, client.EstablishTimeout(0))
			return err
		}, []string{"client: EstablishTimeout(0s): must be positive"}, nil},
		{"nil object in manifests", func() error {
			_, err := c.ApplyManifests(t.Context(), []client.Manifest{{Source: "s", Index: 1}})
			return err
		}, []string{`"s" document 1`, "no object"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := bounded(t, 20*time.Second, tt.call)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
		})
	}
}

// slowZeros is an endless input that never hits the size cap quickly.
type slowZeros struct{}

func (slowZeros) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond) // a slow producer, not synchronisation
	n := min(len(p), 16)
	clear(p[:n])
	return n, nil
}

func TestDefaultLoggerIsKlog(t *testing.T) {
	c, err := client.New(client.WithRESTConfig(&rest.Config{Host: "https://127.0.0.1:1"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Logger().GetSink() == nil {
		t.Fatal("default logger discards: want klog.Background()")
	}
}

// TestExpiredErrorIsResourceExpired: a mid-list 410 with reason Gone (what
// client-go's pager suite feeds) must satisfy the documented
// apierrors.IsResourceExpired, as reason Expired does.
func TestExpiredErrorIsResourceExpired(t *testing.T) {
	for _, gone := range []error{
		//lint:ignore SA1019 client-go's pager suite feeds a 410 with reason Gone, which servers still send
		apierrors.NewGone("continue token expired"),
		apierrors.NewResourceExpired("The provided continue parameter is too old"),
	} {
		t.Run(string(apierrors.ReasonForError(gone)), func(t *testing.T) {
			calls := 0
			list := func(_ context.Context, lo metav1.ListOptions) (*corev1.ConfigMapList, error) {
				calls++
				if lo.Continue != "" {
					return nil, gone
				}
				l := &corev1.ConfigMapList{Items: []corev1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "a"}}}}
				l.Continue = "next"
				return l, nil
			}
			_, err := client.Collect[*corev1.ConfigMap](t.Context(), list)
			var ee *client.ExpiredError
			if !errors.As(err, &ee) || ee.Pages != 1 {
				t.Fatalf("err = %v, want *ExpiredError after 1 page", err)
			}
			if !apierrors.IsResourceExpired(err) {
				t.Errorf("IsResourceExpired(%v) = false", err)
			}
			if !errors.Is(err, gone) || calls != 2 {
				t.Errorf("err does not wrap the server's error %v (calls %d)", gone, calls)
			}
		})
	}
}

// TestEstablishTimeoutNamedOnDeadline: the deadline hitting during the CRD
// read (not between polls) still names the option.
func TestEstablishTimeoutNamedOnDeadline(t *testing.T) {
	c := newClient(t)
	crd := gadgetCRD()
	crd.SetName("timeouts.issue18.kubekit.dev")
	if err := unstructured.SetNestedField(crd.Object, "issue18.kubekit.dev", "spec", "group"); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(crd.Object, map[string]any{"plural": "timeouts", "singular": "timeout", "kind": "Timeout", "listKind": "TimeoutList"}, "spec", "names"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.WithoutCancel(t.Context()), crd) })
	cr := &unstructured.Unstructured{}
	cr.SetAPIVersion("issue18.kubekit.dev/v1")
	cr.SetKind("Timeout")
	cr.SetName("x")
	ms := []client.Manifest{{Source: "m", Index: 1, Object: crd}, {Source: "m", Index: 2, Object: cr}}
	_, err := c.ApplyManifests(t.Context(), ms, client.EstablishTimeout(time.Nanosecond), client.FieldManager("issue18"))
	if err == nil || !strings.Contains(err.Error(), "EstablishTimeout") || !strings.Contains(err.Error(), fmt.Sprint(time.Nanosecond)) {
		t.Fatalf("err = %v, want the deadline naming EstablishTimeout", err)
	}
}

var _ io.Reader = zeros{}
