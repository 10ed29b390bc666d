package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/kubekit/kubekit/internal/exampletest"
	"github.com/kubekit/kubekit/testenv"
)

var env *testenv.Env

// mainEnv makes the test binary run the program's main instead of the
// tests, so that tests can start replicas as separate processes and signal
// them.
const mainEnv = "KUBEKIT_EXAMPLE_CONTROLLER_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		main()
		os.Exit(0)
	}
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

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls b until it holds a line containing want and returns that
// line.
func waitFor(t *testing.T, b *lockedBuffer, want string, others ...*lockedBuffer) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, l := range b.lines() {
			if strings.Contains(l, want) {
				return l
			}
		}
		if time.Now().After(deadline) {
			var more []string
			for _, o := range others {
				more = append(more, o.String())
			}
			t.Fatalf("no line %q in:\n%s\nother output:\n%s", want, b.String(), strings.Join(more, "\n---\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
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

	// Change the data: configured.
	a.Data["k"] = "v2"
	if a, err = cms(src).Update(t.Context(), a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitLine(t, "reconciled "+src+"/a: configured")
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
	r.waitLine(t, "reconciled "+src+"/a: configured")
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
	kc := env.KubeconfigPath()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"zero workers", []string{"--kubeconfig", kc, "--workers", "0"}, []string{"--workers=0"}},
		{"unknown context", []string{"--kubeconfig", kc, "--context", "nope"}, []string{`no context "nope"`}},
		{"missing kubeconfig", []string{"--kubeconfig", "/nonexistent/kc"}, []string{"no such file"}},
		{"extra args", []string{"x"}, []string{"unexpected arguments"}},
		{"bad metrics addr", []string{"--metrics-addr", "8080"}, []string{`--metrics-addr="8080"`, "HOST:PORT"}},
		{"metrics port taken", []string{"--kubeconfig", kc, "--metrics-addr", takenPort(t)}, []string{"--metrics-addr=", "address already in use"}},
		{"bad lease", []string{"--leader-elect", "no-slash"}, []string{`--leader-elect="no-slash"`, "NAMESPACE/NAME"}},
		{"timings without lease", []string{"--lease-duration", "3s"}, []string{"--lease-duration: only used with --leader-elect"}},
		{"empty id", []string{"--id", ""}, []string{`--id=""`}},
		{"every mistake at once", []string{"--workers", "0", "--leader-elect", "x"}, []string{"--workers=0", `--leader-elect="x"`}},
		{"bad log format", []string{"--log-format", "xml"}, []string{"log-format"}},
		{"bad verbosity", []string{"-v", "-1"}, []string{"-v"}},
		{"lease timings", []string{"--kubeconfig", kc, "--leader-elect", "default/bad-timings", "--lease-duration", "1s", "--renew-deadline", "2s"},
			[]string{"WithLeaseDuration(1s): must be longer than WithRenewDeadline(2s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(t.Context(), tt.args, &out, &errOut)
			if err == nil {
				t.Fatalf("run = nil (stderr %q), want an error mentioning %q", errOut.String(), tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error()+errOut.String(), w) {
					t.Errorf("err = %v (stderr %q), want it to mention %q", err, errOut.String(), w)
				}
			}
		})
	}
}

// takenPort returns the address of a listener the test holds open.
func takenPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// proc is the program running as a separate process (the test binary
// re-executed with mainEnv set).
type proc struct {
	cmd         *exec.Cmd
	out, errOut *lockedBuffer
	done        chan struct{}
	err         error // cmd.Wait's, once done is closed
}

func startProcess(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{out: &lockedBuffer{}, errOut: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(os.Environ(), mainEnv+"=1")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.errOut
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("process did not exit; stderr:\n%s", p.errOut)
	}
	var exit *exec.ExitError
	if p.err != nil && !errors.As(p.err, &exit) {
		t.Fatal(p.err)
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func TestHelpAndExitCodes(t *testing.T) {
	p := startProcess(t, "--help")
	if code := p.wait(t); code != 0 {
		t.Errorf("--help exit code %d, want 0", code)
	}
	help := p.errOut.String()
	for _, want := range []string{"Usage: controller [flags]", "--workers", "--kubeconfig", "--metrics-addr", "--leader-elect", "--id", "--lease-duration", "--renew-deadline", "--retry-period", "-v, --v", "--log-format", "--log-file"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help does not mention %q:\n%s", want, help)
		}
	}
	if strings.Contains(help, "controller:") || strings.Contains(help, "error:") || strings.Contains(help, "log_dir") {
		t.Errorf("--help printed an error or klog's flags:\n%s", help)
	}

	p = startProcess(t, "--workers", "0")
	if code := p.wait(t); code != 1 {
		t.Errorf("--workers 0 exit code %d, want 1", code)
	}
	if got := strings.TrimSpace(p.errOut.String()); got != "controller: --workers=0: need at least 1" {
		t.Errorf("stderr = %q, want one line %q", got, "controller: --workers=0: need at least 1")
	}
}

// scrape reads the text exposition at url.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// value sums the series of family name whose labels include want: counter
// and gauge values, histogram sample counts.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
	sum, found := 0.0, false
next:
	for _, m := range mf.GetMetric() {
		for k, v := range want {
			if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == k && l.GetValue() == v }) {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum, found
}

func TestEventsAndMetrics(t *testing.T) {
	kube := exampletest.Kube(t, env.Config())
	src, dst := namespace(t, kube, "src"), namespace(t, kube, "dst")
	r := startController(t, "--workers", "2", "--metrics-addr", "127.0.0.1:0", "--id", "events-test")
	line := waitFor(t, r.out, "controller: serving metrics on ")
	url := strings.TrimPrefix(line, "controller: serving metrics on ")

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ev", Namespace: src,
		Labels:      map[string]string{MirrorLabel: "true", "app": "demo"},
		Annotations: map[string]string{MirrorToAnnotation: dst}},
		Data: map[string]string{"k": "v1"}}
	cm, err := kube.CoreV1().ConfigMaps(src).Create(t.Context(), cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.waitLine(t, "reconciled "+src+"/ev: created")
	cm.Data["k"] = "v2"
	if _, err := kube.CoreV1().ConfigMaps(src).Update(t.Context(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitLine(t, "reconciled "+src+"/ev: configured")
	mirrorIs(t, kube, dst, "ev", src+"/ev", "v2")
	if err := kube.CoreV1().ConfigMaps(src).Delete(t.Context(), "ev", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	r.waitLine(t, "reconciled "+src+"/ev: deleted")

	// Metrics, over HTTP from the running program.
	mfs := scrape(t, url)
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"workqueue_adds_total", map[string]string{"name": queueName}, 3},
		{"workqueue_depth", map[string]string{"name": queueName}, 0},
		{"workqueue_work_duration_seconds", map[string]string{"name": queueName}, 3},
		{"rest_client_requests_total", map[string]string{"code": "200"}, 1},
		{"rest_client_requests_total", map[string]string{"code": "201", "method": "PATCH"}, 1}, // the apply that created the mirror
		{"rest_client_request_duration_seconds", map[string]string{"verb": "PATCH"}, 2},
		{"controller_runtime_reconcile_total", map[string]string{"controller": queueName, "result": "success"}, 3},
		{"controller_runtime_reconcile_time_seconds", map[string]string{"controller": queueName}, 3},
		{"informer_synced", map[string]string{"name": "sources", "resource": "configmaps", "namespace": ""}, 1},
		{"informer_synced", map[string]string{"name": "mirrors", "resource": "configmaps", "namespace": ""}, 1},
		{"informer_store_objects", map[string]string{"name": "mirrors", "resource": "configmaps"}, 0},
		{"informer_store_resource_version", map[string]string{"name": "sources", "resource": "configmaps"}, 1},
		{"informer_processing_latency_seconds", map[string]string{"name": "sources", "resource": "configmaps"}, 3}, // create, update, delete of the source
		{"informer_queued_items", map[string]string{"name": "mirrors", "resource": "configmaps"}, 0},
	} {
		v, ok := value(t, mfs, c.name, c.labels)
		if !ok || v < c.min {
			t.Errorf("%s%v = %v (present %v), want >= %v", c.name, c.labels, v, ok, c.min)
		}
	}
	// The caches' sizes match the API server's (the mirror informer may lag
	// behind the last delete by a moment).
	for name, selector := range map[string]string{"sources": MirrorLabel + "=true", "mirrors": MirroredLabel + "=true"} {
		eventually(t, "informer_store_objects of "+name, func() error {
			list, err := kube.CoreV1().ConfigMaps("").List(t.Context(), metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				return err
			}
			v, _ := value(t, scrape(t, url), "informer_store_objects", map[string]string{"name": name})
			if v != float64(len(list.Items)) {
				return fmt.Errorf("informer_store_objects{name=%q} = %v, the API server has %d", name, v, len(list.Items))
			}
			return nil
		})
	}
	if v, _ := value(t, mfs, "controller_runtime_reconcile_errors_total", map[string]string{"controller": queueName}); v != 0 {
		t.Errorf("controller_runtime_reconcile_errors_total = %v, want 0 (no reconcile failed)", v)
	}

	// Events, read back once the program has stopped: those recorded just
	// before the stop were flushed by it, so no polling.
	r.stop(t)
	if _, err := http.Get(url); err == nil {
		t.Errorf("metrics server still answers after the program stopped")
	}
	evs, err := kube.EventsV1().Events(src).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range evs.Items {
		if e.Regarding.Kind != "ConfigMap" || e.Regarding.Name != "ev" || e.Regarding.Namespace != src {
			t.Errorf("event about %+v, want ConfigMap %s/ev", e.Regarding, src)
			continue
		}
		if e.Type != corev1.EventTypeNormal || e.Reason != "Mirrored" || e.ReportingController != eventReporter || e.ReportingInstance != "events-test" {
			t.Errorf("event %s: type %q reason %q controller %q instance %q, want Normal Mirrored %s events-test", e.Name, e.Type, e.Reason, e.ReportingController, e.ReportingInstance, eventReporter)
		}
		if e.Related == nil || e.Related.Namespace != dst || e.Related.Name != "ev" {
			t.Errorf("event %s: related %+v, want the mirror %s/ev", e.Name, e.Related, dst)
		}
		got[e.Action] = e.Note
	}
	want := map[string]string{"Create": "mirrored to " + dst + "/ev", "Update": "mirrored to " + dst + "/ev", "Delete": "deleted mirror " + dst + "/ev"}
	if !maps.Equal(got, want) {
		t.Errorf("events by action = %v, want %v", got, want)
	}
}

func leaseArgs(ns, id string) []string {
	return []string{"--kubeconfig", env.KubeconfigPath(), "--workers", "1", "--leader-elect", ns + "/mirror", "--id", id,
		"--lease-duration", "3s", "--renew-deadline", "2s", "--retry-period", "250ms"}
}

func TestLeaderElection(t *testing.T) {
	kube := exampletest.Kube(t, env.Config())
	leases, src, dst := namespace(t, kube, "lease"), namespace(t, kube, "src"), namespace(t, kube, "dst")
	t.Cleanup(func() {
		_ = kube.CoreV1().ConfigMaps(src).Delete(context.WithoutCancel(t.Context()), "ha", metav1.DeleteOptions{})
	})

	a := startProcess(t, leaseArgs(leases, "replica-a")...)
	waitFor(t, a.errOut, "leading as replica-a", a.out)
	b := startProcess(t, leaseArgs(leases, "replica-b")...)
	waitFor(t, b.out, "controller: watching", b.errOut) // caches warm on the follower too

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ha", Namespace: src,
		Labels:      map[string]string{MirrorLabel: "true", "app": "demo"},
		Annotations: map[string]string{MirrorToAnnotation: dst}},
		Data: map[string]string{"k": "v1"}}
	cm, err := kube.CoreV1().ConfigMaps(src).Create(t.Context(), cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, a.out, "reconciled "+src+"/ha: created", a.errOut)
	mirrorIs(t, kube, dst, "ha", src+"/ha", "v1")
	if strings.Contains(b.out.String(), "reconciled") || strings.Contains(b.errOut.String(), "leading as") {
		t.Fatalf("the follower reconciled or led:\nstdout:\n%s\nstderr:\n%s", b.out, b.errOut)
	}

	// SIGKILL the leader: it cannot release, so B takes over once the Lease
	// expires (lease duration after A's last renewal).
	killed := time.Now()
	a.signal(t, syscall.SIGKILL)
	a.wait(t)
	waitFor(t, b.errOut, "leading as replica-b", b.out)
	took := time.Since(killed)
	t.Logf("takeover after SIGKILL: %v (lease duration 3s, retry period 250ms)", took.Round(time.Millisecond))
	if took < 2*time.Second || took > 10*time.Second {
		t.Errorf("takeover after SIGKILL took %v, want about the lease duration (3s)", took)
	}
	cm.Data["k"] = "v2"
	if _, err := kube.CoreV1().ConfigMaps(src).Update(t.Context(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b.out, "reconciled "+src+"/ha: configured", b.errOut)
	mirrorIs(t, kube, dst, "ha", src+"/ha", "v2")

	// SIGTERM the leader: it releases the Lease and exits 0; C takes over
	// well within the lease duration.
	c := startProcess(t, leaseArgs(leases, "replica-c")...)
	waitFor(t, c.out, "controller: watching", c.errOut)
	stopped := time.Now()
	b.signal(t, syscall.SIGTERM)
	if code := b.wait(t); code != 0 {
		t.Errorf("leader exit code after SIGTERM = %d, want 0; stderr:\n%s", code, b.errOut)
	}
	waitFor(t, b.errOut, "stopped leading")
	waitFor(t, c.errOut, "leading as replica-c", c.out)
	took = time.Since(stopped)
	t.Logf("handover after SIGTERM: %v", took.Round(time.Millisecond))
	if took >= 3*time.Second {
		t.Errorf("handover after SIGTERM took %v, want less than the lease duration (the Lease is released)", took)
	}
	c.signal(t, syscall.SIGTERM)
	if code := c.wait(t); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	lease, err := kube.CoordinationV1().Leases(leases).Get(t.Context(), "mirror", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("Lease held by %q after the last replica stopped, want released", *h)
	}
}

func TestLostLeadershipExits1(t *testing.T) {
	kube := exampletest.Kube(t, env.Config())
	leases := namespace(t, kube, "lease")
	p := startProcess(t, leaseArgs(leases, "loser")...)
	waitFor(t, p.errOut, "leading as loser", p.out)

	// Another holder takes the Lease over (as a replica that saw it expire
	// while this one was cut off would): this one cannot renew any more.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l, err := kube.CoordinationV1().Leases(leases).Get(t.Context(), "mirror", metav1.GetOptions{})
		if err != nil {
			return err
		}
		thief, d, now := "thief", int32(60), metav1.NewMicroTime(time.Now())
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.AcquireTime, l.Spec.RenewTime = &thief, &d, &now, &now
		_, err = kube.CoordinationV1().Leases(leases).Update(t.Context(), l, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 1 {
		t.Errorf("exit code after losing the Lease = %d, want 1; stderr:\n%s", code, p.errOut)
	}
	errOut := p.errOut.String()
	for _, want := range []string{"stopped leading", "controller: lost the Lease " + leases + "/mirror, exiting so that a supervisor restarts this replica as a follower: leader: leadership lost"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, errOut)
		}
	}
}
