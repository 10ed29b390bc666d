package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubekit/kubekit/internal/exampletest"
	"github.com/kubekit/kubekit/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	exampletest.RunAsMain("LIST_TEST_MAIN", "list", main) // the test binary as the program, for exit codes
	os.Exit(testenv.RunMain(m, func(e *testenv.Env) { env = e }))
}

func runList(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(t.Context(), append([]string{"--kubeconfig", env.KubeconfigPath()}, args...), &out, &errOut)
	return out.String(), errOut.String(), err
}

func namespace(t *testing.T, k kubernetes.Interface, name string) {
	t.Helper()
	if _, err := k.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

var (
	createdLine = regexp.MustCompile(`^created (\d+), failed (\d+) in (\d+\.\d\d)s$`)
	listedLine  = regexp.MustCompile(`^listed (\d+) objects in \d+\.\d\ds \((\d+) pages\)$`)
)

func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

// summary checks that out ends with a line matching re and returns the
// other lines and the submatches.
func summary(t *testing.T, out string, re *regexp.Regexp) ([]string, []string) {
	t.Helper()
	l := lines(out)
	m := re.FindStringSubmatch(l[len(l)-1])
	if m == nil {
		t.Fatalf("last line %q does not match %s; output:\n%s", l[len(l)-1], re, out)
	}
	return l[:len(l)-1], m[1:]
}

func names(prefix string, n, width int, ns string) []string {
	var s []string
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%s%0*d", prefix, width, i)
		if ns != "" {
			name = ns + "/" + name
		}
		s = append(s, name)
	}
	return s
}

func TestCreateThenListPaged(t *testing.T) {
	k := exampletest.Kube(t, env.Config())
	const ns = "list-paged"
	namespace(t, k, ns)
	before := goleak.IgnoreCurrent()
	out, errOut, err := runList(t, "--resource", "configmaps", "-n", ns, "--create", "45", "--prefix", "cm-")
	goleak.VerifyNone(t, before) // the worker pool is joined, connections closed
	if err != nil {
		t.Fatalf("create: %v\n%s", err, errOut)
	}
	if rest, m := summary(t, out, createdLine); len(rest) != 0 || m[0] != "45" || m[1] != "0" {
		t.Fatalf("stdout %q, want only created 45, failed 0", out)
	}
	// stderr is not a terminal: one line per tenth, exactly.
	var want []string
	for _, done := range []int{5, 9, 14, 18, 23, 27, 32, 36, 41, 45} {
		want = append(want, fmt.Sprintf("progress: %d/45 (%d%%), 0 failed", done, done*100/45))
	}
	if got := lines(errOut); !slices.Equal(got, want) {
		t.Fatalf("progress lines:\n%s\nwant:\n%s", errOut, strings.Join(want, "\n"))
	}
	cms, err := k.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, cm := range cms.Items {
		if cm.Labels["app.kubernetes.io/created-by"] != "kubekit-list" {
			t.Errorf("ConfigMap %s labels %v", cm.Name, cm.Labels)
		}
		got = append(got, ns+"/"+cm.Name)
	}
	if want := names("cm-", 45, 2, ns); !slices.Equal(got, want) {
		t.Fatalf("ConfigMaps on the server %v, want %v", got, want)
	}

	// A ConfigMap the selector leaves out.
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: map[string]string{"app": "x"}}}
	if _, err := k.CoreV1().ConfigMaps(ns).Create(t.Context(), other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args  []string
		want  []string
		pages string
	}{
		{[]string{"--page-size", "10"}, append(names("cm-", 45, 2, ns), ns+"/other"), "5"},
		{[]string{"--page-size", "10", "-l", "app.kubernetes.io/created-by=kubekit-list"}, names("cm-", 45, 2, ns), "5"},
		{[]string{"--selector", "app=x"}, []string{ns + "/other"}, "1"},
		{nil, append(names("cm-", 45, 2, ns), ns+"/other"), "1"}, // default page size 500
	} {
		out, errOut, err := runList(t, append([]string{"--resource", "configmaps", "-n", ns}, tt.args...)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", tt.args, err, errOut)
		}
		rest, m := summary(t, out, listedLine)
		if !slices.Equal(rest, tt.want) || m[0] != strconv.Itoa(len(tt.want)) || m[1] != tt.pages {
			t.Errorf("%v: output\n%s\nwant %d objects in %s pages: %v", tt.args, out, len(tt.want), tt.pages, tt.want)
		}
	}
}

// TestListAllNamespacesStreams lists 1,200 Namespaces (cluster-scoped, the
// tutorial's case) in pages of 100: 13 requests, objects printed in order.
func TestListAllNamespacesStreams(t *testing.T) {
	out, errOut, err := runList(t, "--create", "1200", "--prefix", "lst-", "--qps", "1000", "--burst", "1000")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, errOut)
	}
	if _, m := summary(t, out, createdLine); m[0] != "1200" || m[1] != "0" {
		t.Fatalf("stdout %q", out)
	}
	out, errOut, err = runList(t, "--resource", "namespaces", "--page-size", "100")
	if err != nil {
		t.Fatalf("list: %v\n%s", err, errOut)
	}
	rest, m := summary(t, out, listedLine)
	k := exampletest.Kube(t, env.Config())
	all, err := k.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, ns := range all.Items {
		want = append(want, ns.Name)
	}
	pages := strconv.Itoa((len(want) + 99) / 100)
	if !slices.Equal(rest, want) || m[0] != strconv.Itoa(len(want)) || m[1] != pages {
		t.Fatalf("listed %s objects in %s pages (%d lines), want %d in %s; first lines %q", m[0], m[1], len(rest), len(want), pages, rest[:min(5, len(rest))])
	}
	if !slices.IsSorted(rest) || !slices.Contains(rest, "lst-0001") || !slices.Contains(rest, "lst-1200") {
		t.Fatalf("names not sorted or created ones missing: %q ...", rest[:min(5, len(rest))])
	}
}

// TestQPSAndBurst: 45 creates at 20 QPS with a burst of 5 cannot take less
// than (45-5)/20 = 2s, however many workers there are.
func TestQPSAndBurst(t *testing.T) {
	k := exampletest.Kube(t, env.Config())
	namespace(t, k, "list-qps")
	start := time.Now()
	out, errOut, err := runList(t, "--resource", "configmaps", "-n", "list-qps", "--create", "45", "--prefix", "q", "--qps", "20", "--burst", "5", "--workers", "45")
	took := time.Since(start)
	if err != nil {
		t.Fatalf("create: %v\n%s", err, errOut)
	}
	_, m := summary(t, out, createdLine)
	printed, _ := strconv.ParseFloat(m[2], 64)
	if m[0] != "45" || took < 1900*time.Millisecond || printed < 1.9 || printed > took.Seconds() {
		t.Fatalf("created %s in %ss (measured %v), want 45 in at least 2s (rate-limited)", m[0], m[2], took)
	}
}

func TestDeploymentsAndCustomResources(t *testing.T) {
	k := exampletest.Kube(t, env.Config())
	const ns = "list-kinds"
	namespace(t, k, ns)
	if err := env.InstallCRDFiles(t.Context(), "testdata/widgets-crd.yaml"); err != nil {
		t.Fatal(err)
	}
	for _, res := range []string{"deployments.apps", "widgets.list.kubekit.dev"} {
		out, errOut, err := runList(t, "--resource", res, "-n", ns, "--create", "3", "--prefix", "x-")
		if err != nil {
			t.Fatalf("%s create: %v\n%s", res, err, errOut)
		}
		if _, m := summary(t, out, createdLine); m[0] != "3" {
			t.Fatalf("%s: %q", res, out)
		}
		out, errOut, err = runList(t, "--resource", res, "-n", ns, "--page-size", "2")
		if err != nil {
			t.Fatalf("%s list: %v\n%s", res, err, errOut)
		}
		rest, m := summary(t, out, listedLine)
		if want := names("x-", 3, 1, ns); !slices.Equal(rest, want) || m[0] != "3" || m[1] != "2" {
			t.Errorf("%s: output\n%s\nwant %v in 2 pages", res, out, want)
		}
	}
	d, err := k.AppsV1().Deployments(ns).Get(t.Context(), "x-2", metav1.GetOptions{})
	if err != nil || len(d.Spec.Template.Spec.Containers) != 1 || *d.Spec.Replicas != 0 {
		t.Fatalf("Deployment x-2: %v %+v", err, d.Spec)
	}
	dyn, err := dynamic.NewForConfig(env.Config())
	if err != nil {
		t.Fatal(err)
	}
	w, err := dyn.Resource(schema.GroupVersionResource{Group: "list.kubekit.dev", Version: "v1", Resource: "widgets"}).Namespace(ns).Get(t.Context(), "x-3", metav1.GetOptions{})
	if err != nil || w.GetKind() != "Widget" {
		t.Fatalf("Widget x-3: %v %v", err, w)
	}
}

// TestFailuresAreCountedAndNamed: objects that exist already fail, the rest
// are created, the summary counts both and the program fails naming them.
func TestFailuresAreCountedAndNamed(t *testing.T) {
	k := exampletest.Kube(t, env.Config())
	const ns = "list-fail"
	namespace(t, k, ns)
	for _, name := range []string{"f2", "f4"} {
		if _, err := k.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, err := runList(t, "--resource", "configmaps", "-n", ns, "--create", "5", "--prefix", "f")
	if err == nil || !strings.HasPrefix(err.Error(), "2 of 5 creates failed:") ||
		!strings.Contains(err.Error(), `configmaps "f2" already exists`) || !strings.Contains(err.Error(), `configmaps "f4" already exists`) {
		t.Fatalf("err = %v, want 2 of 5 failed naming f2 and f4", err)
	}
	if _, m := summary(t, out, createdLine); m[0] != "3" || m[1] != "2" {
		t.Fatalf("stdout %q, want created 3, failed 2", out)
	}
	if got := lines(errOut); got[len(got)-1] != "progress: 5/5 (100%), 2 failed" {
		t.Fatalf("progress:\n%s", errOut)
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--resource", "nopes"}, "--resource=nopes: not served by the API server"},
		{[]string{"--resource", ""}, "--resource: empty"},
		{[]string{"--page-size", "0"}, "--page-size=0: must be > 0"},
		{[]string{"--qps", "0"}, "--qps=0: must be > 0"},
		{[]string{"--burst", "-1"}, "--burst=-1: must be > 0"},
		{[]string{"--workers", "0", "--create", "2"}, "--workers=0: must be > 0"},
		{[]string{"--create", "-3"}, "--create=-3: must be >= 0"},
		{[]string{"--create", "2", "--prefix", "Bad_"}, `--prefix="Bad_": names like "Bad_2" are invalid`},
		{[]string{"--prefix", "p"}, "--prefix: only used with --create N"},
		{[]string{"--create", "2", "-l", "a=b"}, "-l/--selector: applies to listing"},
		{[]string{"--resource", "configmaps", "--create", "2"}, "--create: configmaps are namespaced; pass -n NAMESPACE"},
		{[]string{"--resource", "namespaces", "-n", "default"}, "-n default: namespaces are not namespaced"},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
	}
	for _, tt := range tests {
		out, _, err := runList(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || out != "" {
			t.Errorf("%v: err = %v, stdout %q; want an error containing %q", tt.args, err, out, tt.want)
		}
	}
	// every flag mistake at once
	_, _, err := runList(t, "--page-size", "0", "--qps", "0")
	if err == nil || !strings.Contains(err.Error(), "--page-size") || !strings.Contains(err.Error(), "--qps") {
		t.Errorf("err = %v, want both mistakes", err)
	}
}

func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"--help"}, &out, &errOut); !errors.Is(err, pflag.ErrHelp) {
		t.Fatalf("err = %v, want ErrHelp", err)
	}
	for _, f := range []string{"--resource", "-n, --namespace", "-l, --selector", "--page-size int", "(default 500)", "--create", "--prefix", "--workers", "--qps", "--burst", "--kubeconfig"} {
		if !strings.Contains(errOut.String(), f) {
			t.Errorf("usage does not mention %s:\n%s", f, errOut.String())
		}
	}
}

// TestExitCodes runs main itself: --help exits 0, an error exits 1 with
// "list: <error>" on stderr.
func TestExitCodes(t *testing.T) {
	for _, tt := range []struct {
		args, stderr string
		code         int
	}{
		{"--help", "Usage: list [flags]", 0},
		{"--kubeconfig " + env.KubeconfigPath() + " --resource nopes", "list: --resource=nopes: not served", 1},
	} {
		code, stderr := exampletest.ExitCode(t, "LIST_TEST_MAIN", tt.args)
		if code != tt.code || !strings.HasPrefix(stderr, tt.stderr) {
			t.Errorf("list %s: exit %d, stderr %q; want exit %d and stderr starting %q", tt.args, code, stderr, tt.code, tt.stderr)
		}
	}
}

// TestTerminalProgressBar gives the program a real terminal (a pseudo
// terminal 60 columns wide) as stderr: it draws a bar in place with \r,
// never wider than the terminal, and ends the bar's line.
func TestTerminalProgressBar(t *testing.T) {
	k := exampletest.Kube(t, env.Config())
	namespace(t, k, "list-tty")
	ptm, pts := openPTY(t, 60)
	read := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(ptm); read <- b }()
	var out bytes.Buffer
	args := []string{"--kubeconfig", env.KubeconfigPath(), "--resource", "configmaps", "-n", "list-tty", "--create", "30", "--prefix", "t"}
	err := run(t.Context(), args, &out, pts)
	_ = pts.Close() // the reader sees EIO once the terminal's other side is closed
	if err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(string(<-read), "\r\n", "\n") // the terminal maps \n to \r\n
	if !strings.HasPrefix(got, "\r[") || !strings.HasSuffix(got, "\n") || strings.Contains(got, "progress:") {
		t.Fatalf("terminal output %q, want a bar redrawn with \\r and no plain lines", got)
	}
	draws := strings.Split(strings.TrimSuffix(strings.TrimPrefix(got, "\r"), "\n"), "\r")
	last := draws[len(draws)-1]
	if !regexp.MustCompile(`^\[=+\] 30/30 100% \d+/s 0 failed$`).MatchString(last) {
		t.Fatalf("last bar %q", last)
	}
	for _, d := range draws {
		if len(d) > 59 {
			t.Errorf("bar %q is %d columns, wider than the terminal's 60 minus one", d, len(d))
		}
	}
	if _, m := summary(t, out.String(), createdLine); m[0] != "30" {
		t.Fatalf("stdout %q", out.String())
	}
}

// openPTY opens a pseudo terminal cols columns wide and returns its master
// and slave ends.
func openPTY(t *testing.T, cols uint16) (*os.File, *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo terminals here (%v): the terminal path of the progress bar is untested", err)
	}
	t.Cleanup(func() { _ = ptm.Close() })
	fd := int(ptm.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: 24}); err != nil {
		t.Fatal(err)
	}
	return ptm, pts
}
