package testenv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubekit/kubekit/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	if os.Getenv("KUBEKIT_TESTENV_PANIC_CHILD") != "" {
		panicChild()
		return
	}
	os.Exit(testenv.RunMain(m, func(e *testenv.Env) { env = e }))
}

func clientset(t *testing.T) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestVersionAndKubeconfig(t *testing.T) {
	cfg, err := clientcmd.BuildConfigFromFlags("", env.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != testenv.KubernetesVersion || v.Major != "1" || v.Minor != "37" {
		t.Fatalf("server version = %+v, want %s", v, testenv.KubernetesVersion)
	}
	if _, err := cs.CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("default namespace: %v", err)
	}
}

func TestUserConfigIsSubjectToRBAC(t *testing.T) {
	cfg, err := env.UserConfig("nobody")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().ConfigMaps("default").List(t.Context(), metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("list as an unprivileged user: err = %v, want Forbidden", err)
	}
}

func TestRestartKeepsDataAndFlags(t *testing.T) {
	cs := clientset(t)
	ctx := t.Context()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "survivor"}, Data: map[string]string{"k": "v"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A short --min-request-timeout makes the server end watches after 1-2s.
	if err := env.RestartAPIServer(ctx, "--min-request-timeout=1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 2*time.Minute)
		defer cancel()
		if err := env.RestartAPIServer(ctx); err != nil {
			t.Errorf("restore API server: %v", err)
		}
	})
	got, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "survivor", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("object after restart: %v", err)
	}
	if got.Data["k"] != "v" {
		t.Fatalf("data after restart = %v", got.Data)
	}
	w, err := cs.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{ResourceVersion: got.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case _, ok := <-w.ResultChan():
			if !ok {
				return // the server closed the watch: the flag took effect
			}
		case <-deadline:
			t.Fatal("watch still open after 20s: --min-request-timeout=1 was not applied")
		}
	}
}

func TestCompactGives410(t *testing.T) {
	cs := clientset(t)
	ctx := t.Context()
	cms := cs.CoreV1().ConfigMaps("default")
	list, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldRV := list.ResourceVersion
	for i := range 3 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("compact-%d", i)}}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: oldRV})
	if err != nil {
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return
		}
		t.Fatal(err)
	}
	defer w.Stop()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed without an event")
		}
		if ev.Type != watch.Error {
			t.Fatalf("first event = %s, want ERROR 410", ev.Type)
		}
		st, _ := ev.Object.(*metav1.Status)
		if st == nil || st.Code != 410 {
			t.Fatalf("error event = %#v, want code 410", ev.Object)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no event from a watch at a compacted resourceVersion")
	}
}

func TestInstallCRDs(t *testing.T) {
	ctx := t.Context()
	crd := filepath.Join(t.TempDir(), "crd.yaml")
	if err := os.WriteFile(crd, []byte(widgetCRD), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := env.InstallCRDFiles(ctx, crd); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(env.Config())
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "example.kubekit.dev", Version: "v1", Resource: "widgets"}
	w := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.kubekit.dev/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w1"}, "spec": map[string]any{"size": int64(3)},
	}}
	if _, err := dyn.Resource(gvr).Namespace("default").Create(ctx, w, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create custom resource: %v", err)
	}
	// Installing the same CRD again updates it instead of failing.
	if err := env.InstallCRDFiles(ctx, crd); err != nil {
		t.Fatalf("second install: %v", err)
	}
}

func TestStopLeavesNoProcess(t *testing.T) {
	e, err := testenv.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pids := e.PIDs()
	if len(pids) != 2 {
		t.Fatalf("PIDs = %v, want etcd and kube-apiserver", pids)
	}
	for _, pid := range pids {
		if !testenv.ProcessAlive(pid) {
			t.Fatalf("pid %d not running after Start", pid)
		}
	}
	dir := e.Dir()
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if testenv.ProcessAlive(pid) {
			t.Errorf("pid %d still running after Stop", pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("working directory %s not removed: %v", dir, err)
	}
	if err := e.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// TestPanicLeavesNoProcess runs a child test binary that starts a control
// plane and then panics on another goroutine (so no deferred cleanup runs):
// the parent-death signal must still take etcd and kube-apiserver down.
func TestPanicLeavesNoProcess(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids.json")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KUBEKIT_TESTENV_PANIC_CHILD="+pidFile)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "deliberate panic") {
		t.Fatalf("child did not panic as planned: err=%v\n%s", err, out)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("child wrote no pids: %v\n%s", err, out)
	}
	var child struct {
		PIDs []int
		Dir  string
	}
	if err := json.Unmarshal(data, &child); err != nil || len(child.PIDs) != 2 || child.Dir == "" {
		t.Fatalf("child report %q: %v", data, err)
	}
	pids := child.PIDs
	// The child died without cleanup: its working directory is ours to remove.
	t.Cleanup(func() { _ = os.RemoveAll(child.Dir) })
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for testenv.ProcessAlive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d survived the panic of its parent", pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func panicChild() {
	e, err := testenv.Start(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	data, _ := json.Marshal(struct {
		PIDs []int
		Dir  string
	}{e.PIDs(), e.Dir()})
	if err := os.WriteFile(os.Getenv("KUBEKIT_TESTENV_PANIC_CHILD"), data, 0o600); err != nil {
		os.Exit(4)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		panic("deliberate panic")
	}()
	<-done
}

const widgetCRD = `# a CRD with a comment and a leading empty document
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.kubekit.dev
spec:
  group: example.kubekit.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
`

func TestMissingBinariesNameEveryPlaceAndTheFix(t *testing.T) {
	empty := t.TempDir()
	_, err := testenv.Start(t.Context(), testenv.WithBinaryDir(empty))
	if err == nil {
		t.Fatal("Start with an empty binary directory succeeded")
	}
	for _, want := range []string{empty, "WithBinaryDir", "no kube-apiserver, no etcd", `"make testbin"`, "setup-envtest", "KUBEBUILDER_ASSETS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}

	// The lookup order: $KUBEKIT_ASSETS, then $KUBEBUILDER_ASSETS, then the
	// repository's bin/; the first that holds both binaries wins.
	real, err := testenv.BinaryDir()
	if err != nil {
		t.Fatal(err)
	}
	kubekitAssets, kubebuilderAssets := t.TempDir(), t.TempDir()
	t.Setenv(testenv.AssetsEnv, kubekitAssets)
	t.Setenv(testenv.KubebuilderAssetsEnv, kubebuilderAssets)
	if d, err := testenv.BinaryDir(); err != nil || d != real {
		t.Fatalf("with both variables naming empty directories: BinaryDir = %q, %v; want the repository's %s", d, err, real)
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if err := os.Symlink(filepath.Join(real, b), filepath.Join(kubebuilderAssets, b)); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := testenv.BinaryDir(); err != nil || d != kubebuilderAssets {
		t.Fatalf("BinaryDir = %q, %v; want $%s %s", d, err, testenv.KubebuilderAssetsEnv, kubebuilderAssets)
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if err := os.Symlink(filepath.Join(real, b), filepath.Join(kubekitAssets, b)); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := testenv.BinaryDir(); err != nil || d != kubekitAssets {
		t.Fatalf("BinaryDir = %q, %v; want $%s %s", d, err, testenv.AssetsEnv, kubekitAssets)
	}
}

func TestBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  testenv.Option
		want string
	}{
		{"zero start timeout", testenv.WithStartTimeout(0), "WithStartTimeout(0s): must be positive"},
		{"negative grace", testenv.WithStopGrace(-time.Second), "WithStopGrace(-1s)"},
		{"user without a name", testenv.WithUsers(testenv.User{}), "user 0 has no Name"},
		{"user twice", testenv.WithUsers(testenv.User{Name: "a"}, testenv.User{Name: "a"}), `user "a" given twice`},
		{"masters", testenv.WithUsers(testenv.User{Name: "b", Groups: []string{"system:masters"}}), "bypass RBAC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := testenv.Start(t.Context(), tt.opt)
			if err == nil {
				_ = e.Stop()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestOptionsInstallCRDsAndUsers starts a private Env with a CRD and a user
// who may only read ConfigMaps, and a kill of the API server it recovers from.
func TestOptionsInstallCRDsAndUsersAndKill(t *testing.T) {
	crd := filepath.Join(t.TempDir(), "crd.yaml")
	if err := os.WriteFile(crd, []byte(widgetCRD), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := testenv.Start(t.Context(), testenv.WithCRDFiles(crd), testenv.WithUsers(testenv.User{
		Name:  "reader",
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := e.Stop(); err != nil {
			t.Error(err)
		}
	}()
	ctx := t.Context()
	dyn, err := dynamic.NewForConfig(e.Config())
	if err != nil {
		t.Fatal(err)
	}
	widgets := schema.GroupVersionResource{Group: "example.kubekit.dev", Version: "v1", Resource: "widgets"}
	if _, err := dyn.Resource(widgets).Namespace("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list widgets right after Start: %v", err)
	}

	path, err := e.UserKubeconfigPath("reader")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	reader := kubernetes.NewForConfigOrDie(cfg)
	if _, err := reader.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("reader cannot list ConfigMaps: %v", err)
	}
	_, err = reader.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("reader create = %v, want Forbidden", err)
	}
	if _, err := reader.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("reader list Secrets = %v, want Forbidden", err)
	}

	apiPID := e.PIDs()[1]
	if err := e.KillAPIServer(); err != nil {
		t.Fatal(err)
	}
	if testenv.ProcessAlive(apiPID) {
		t.Fatalf("kube-apiserver pid %d alive after KillAPIServer", apiPID)
	}
	admin := kubernetes.NewForConfigOrDie(e.Config())
	if _, err := admin.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err == nil {
		t.Fatal("API server answered after KillAPIServer")
	}
	if err := e.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(widgets).Namespace("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list widgets after the restart: %v", err)
	}
}

func TestExtraFlagsAndPrivateEnv(t *testing.T) {
	// A private Env with an extra flag: the shared one is left alone.
	e, err := testenv.Start(t.Context(), testenv.WithAPIServerFlags("--min-request-timeout=5"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := e.Stop(); err != nil {
			t.Error(err)
		}
	}()
	if e.Host() == env.Host() {
		t.Fatalf("private env shares the host %s", e.Host())
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", e.PIDs()[1]))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cmdline), "--min-request-timeout=5") {
		t.Fatalf("kube-apiserver command line lacks the extra flag: %q", cmdline)
	}
}
