package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubekit/kubekit/internal/exampletest"
	"github.com/kubekit/kubekit/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.RunMain(m, func(e *testenv.Env) { env = e }))
}

// start runs the program in the background against the test API server.
func start(t *testing.T, args ...string) (*exampletest.Output, func() error) {
	t.Helper()
	return exampletest.Start(t, run, append([]string{"--kubeconfig", env.KubeconfigPath()}, args...)...)
}

func waitLines(t *testing.T, out *exampletest.Output, want func([]string) bool) []string {
	t.Helper()
	return exampletest.WaitLines(t, out, want)
}

func TestEventsAndCheckpoint(t *testing.T) {
	k := exampletest.Kube(t, env.Config())
	ctx := t.Context()
	ns := "ex-watch"
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cms := k.CoreV1().ConfigMaps(ns)
	mk := func(name string, labels map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	pre, err := cms.Create(ctx, mk("pre", map[string]string{"app": "web"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, mk("other", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "cp.json")
	args := []string{"--resource", "configmaps", "-n", ns, "-l", "app=web", "--checkpoint", cp}
	out, stop := start(t, args...)
	waitLines(t, out, func(l []string) bool { return len(l) >= 1 })
	a, err := cms.Create(ctx, mk("a", map[string]string{"app": "web"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a.Data = map[string]string{"v": "2"}
	a2, err := cms.Update(ctx, a, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	lines := waitLines(t, out, func(l []string) bool { return len(l) >= 4 })
	if err := stop(); err != nil {
		t.Fatalf("run after interrupt: %v", err)
	}
	want := []string{
		"ADDED " + ns + "/pre " + pre.ResourceVersion,
		"ADDED " + ns + "/a " + a.ResourceVersion,
		"MODIFIED " + ns + "/a " + a2.ResourceVersion,
	}
	if !slices.Equal(lines[:3], want) || !strings.HasPrefix(lines[3], "DELETED "+ns+"/a ") || len(lines) != 4 {
		t.Fatalf("output %q, want %q then DELETED", lines, want)
	}
	if _, err := os.Stat(cp); err != nil {
		t.Fatalf("no checkpoint after the interrupt: %v", err)
	}

	// Stopped: one change; the next run prints exactly it.
	b, err := cms.Create(ctx, mk("b", map[string]string{"app": "web"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, stop = start(t, args...)
	lines = waitLines(t, out, func(l []string) bool { return len(l) >= 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"ADDED " + ns + "/b " + b.ResourceVersion}; !slices.Equal(lines, want) {
		t.Fatalf("after resume: %q, want %q", lines, want)
	}
}

func TestClusterScoped(t *testing.T) {
	out, stop := start(t, "--resource", "namespaces", "-l", "kubernetes.io/metadata.name=kube-system")
	lines := waitLines(t, out, func(l []string) bool { return len(l) >= 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "ADDED kube-system ") {
		t.Fatalf("output %q, want one ADDED kube-system line", lines)
	}
}

func TestErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown resource", []string{"--resource", "nopes.example.com"}, "nopes.example.com"},
		{"empty resource", []string{"--resource", ""}, "--resource"},
		{"bad selector", []string{"-l", "app in (x"}, "WithLabelSelector"},
		{"bad namespace", []string{"-n", "Bad_NS"}, "not a valid namespace name"},
		{"namespace for cluster-scoped", []string{"--resource", "namespaces", "-n", "x"}, "cluster-scoped"},
		{"checkpoint dir missing", []string{"--checkpoint", "/nonexistent/dir/cp.json"}, "--checkpoint"},
		{"corrupt checkpoint", []string{"--checkpoint", bad}, "bad checkpoint"},
		{"bad flag", []string{"--nope"}, "unknown flag"},
		{"two checkpoints", []string{"--checkpoint", bad, "--checkpoint-configmap", "default/cp"}, "give one of them"},
		{"bad checkpoint configmap", []string{"--checkpoint-configmap", "cp"}, "--checkpoint-configmap: \"cp\": want NAMESPACE/NAME"},
		{"bad lease", []string{"--leader-elect", "default/"}, "--leader-elect"},
		{"lease timing without lease", []string{"--lease-duration", "3s"}, "--lease-duration: only with --leader-elect"},
		{"bad lease timings", []string{"--leader-elect", "default/l", "--lease-duration", "1s", "--renew-deadline", "2s"}, "WithLeaseDuration(1s): must be longer"},
		{"bad checkpoint configmap name", []string{"--checkpoint-configmap", "default/Bad_Name"}, "Bad_Name"},
		{"extra argument", []string{"pods"}, "unexpected arguments"},
		{"unknown context", []string{"--context", "nope"}, `"nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut exampletest.Output
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			err := run(ctx, append([]string{"--kubeconfig", env.KubeconfigPath()}, tt.args...), &out, &errOut)
			if err == nil || !strings.Contains(err.Error()+fmt.Sprint(errOut.Lines()), tt.want) {
				t.Fatalf("err = %v (stderr %q), want it to mention %q", err, errOut.Lines(), tt.want)
			}
			if s := out.Lines(); len(s) != 0 {
				t.Fatalf("stdout on error: %q", s)
			}
		})
	}
}
