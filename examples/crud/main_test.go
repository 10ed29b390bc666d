package main

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubekit/kubekit/internal/exampletest"
	"github.com/kubekit/kubekit/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	exampletest.RunAsMain("CRUD_TEST_MAIN", "crud", main) // the test binary as the program, for exit codes
	os.Exit(testenv.RunMain(m, func(e *testenv.Env) { env = e }))
}

// wantLines is the output for namespace ns; List lines carry a count that
// depends on the cluster and are matched by pattern.
func wantLines(ns string, deleted bool) []string {
	lines := []string{
		`Namespace.List: ok \(\d+ items\)`,
		"Namespace.Create " + ns + ": ok",
		"Namespace.Get " + ns + ": ok",
		"Namespace.Update " + ns + ": ok",
		"Namespace.Patch(json) " + ns + ": ok",
		"Namespace.Patch(merge) " + ns + ": ok",
		"Namespace.Apply " + ns + ": ok (configured)",
		"ConfigMap.Create settings: ok",
		"ConfigMap.Get settings: ok",
		"ConfigMap.List " + ns + ": ok (1 items)",
		"ConfigMap.Update settings: ok",
		"ConfigMap.Patch(json) settings: ok",
		"ConfigMap.Patch(merge) settings: ok",
		"ConfigMap.Patch(strategic) settings: ok",
		"ConfigMap.Apply settings: ok (configured)",
		"Deployment.Create web: ok",
		"Deployment.Get web: ok",
		"Deployment.List " + ns + ": ok (1 items)",
		"Deployment.Update web: ok",
		"Deployment.Patch(json) web: ok",
		"Deployment.Patch(merge) web: ok",
		"Deployment.Patch(strategic) web: ok",
		"Deployment.Apply web: ok (configured)",
	}
	if deleted {
		lines = append(lines, "Deployment.Delete web: ok", "ConfigMap.Delete settings: ok", "Namespace.Delete "+ns+": ok")
	}
	return lines
}

func assertLines(t *testing.T, got string, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	ok := len(lines) == len(want)
	for i := 0; ok && i < len(want); i++ {
		if strings.HasPrefix(want[i], "Namespace.List") {
			ok = regexp.MustCompile("^" + want[i] + "$").MatchString(lines[i])
		} else {
			ok = lines[i] == want[i]
		}
	}
	if !ok {
		t.Fatalf("output:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func runCrud(t *testing.T, kubeconfig string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(t.Context(), append([]string{"--kubeconfig", kubeconfig}, args...), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestWalkCleansUp(t *testing.T) {
	k := exampletest.Kube(t, env.Config())
	before := goleak.IgnoreCurrent()
	out, errOut, err := runCrud(t, env.KubeconfigPath(), "-n", "crud-walk")
	goleak.VerifyNone(t, before) // run closes its connections
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	assertLines(t, out, wantLines("crud-walk", true))
	// There is no namespace controller: the Namespace stays Terminating, and
	// its objects are gone because the program deleted them one by one.
	ns, err := k.CoreV1().Namespaces().Get(t.Context(), "crud-walk", metav1.GetOptions{})
	if err != nil || ns.DeletionTimestamp == nil {
		t.Fatalf("namespace after the walk: %v, deletionTimestamp %v", err, ns.GetDeletionTimestamp())
	}
	if _, err := k.CoreV1().ConfigMaps("crud-walk").Get(t.Context(), "settings", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ConfigMap settings: err = %v, want NotFound", err)
	}
	if _, err := k.AppsV1().Deployments("crud-walk").Get(t.Context(), "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment web: err = %v, want NotFound", err)
	}
}

// TestWalkKeep checks, with --keep, the state every step left on the server.
func TestWalkKeep(t *testing.T) {
	k := exampletest.Kube(t, env.Config())
	const name = "crud-keep"
	out, errOut, err := runCrud(t, env.KubeconfigPath(), "--namespace", name, "--keep")
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	assertLines(t, out, wantLines(name, false))

	ns, err := k.CoreV1().Namespaces().Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels["a"] != "f" || ns.Labels["applied"] != "true" || ns.DeletionTimestamp != nil {
		t.Errorf("namespace labels %v (deleting %v), want a=f (update, json patch, merge patch) and applied=true (apply)", ns.Labels, ns.DeletionTimestamp)
	}
	cm, err := k.CoreV1().ConfigMaps(name).Get(t.Context(), "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"greeting": "ciao", "lang": "fr"}; !maps.Equal(cm.Data, want) || cm.Labels["app"] != "crud" {
		t.Errorf("ConfigMap data %v labels %v, want %v and app=crud", cm.Data, cm.Labels, want)
	}
	d, err := k.AppsV1().Deployments(name).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]string{}
	for _, c := range d.Spec.Template.Spec.Containers {
		images[c.Name] = c.Image
	}
	if want := map[string]string{"web": "nginx:1.28", "sidecar": "busybox:1.36"}; *d.Spec.Replicas != 4 || !maps.Equal(images, want) {
		t.Errorf("Deployment replicas %d containers %v, want 4 and %v", *d.Spec.Replicas, images, want)
	}
	// The Apply steps recorded an Apply manager beside the Update one.
	var ops []string
	for _, mf := range d.ManagedFields {
		ops = append(ops, mf.Manager+"/"+string(mf.Operation))
	}
	if !slices.Contains(ops, "kubekit/Apply") || !slices.Contains(ops, "kubekit/Update") {
		t.Errorf("managedFields managers %v, want kubekit/Apply and kubekit/Update", ops)
	}
}

// TestExistingNamespace: the first write fails, is named, and the program
// leaves a Namespace it did not create alone.
func TestExistingNamespace(t *testing.T) {
	k := exampletest.Kube(t, env.Config())
	if _, err := k.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "crud-taken"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCrud(t, env.KubeconfigPath(), "-n", "crud-taken")
	if err == nil || !strings.HasPrefix(err.Error(), "Namespace.Create crud-taken: ") || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("err = %v, want it to name Namespace.Create crud-taken and say already exists", err)
	}
	if !regexp.MustCompile(`^Namespace.List: ok \(\d+ items\)\n$`).MatchString(out) {
		t.Fatalf("stdout = %q, want only the List line", out)
	}
	ns, err := k.CoreV1().Namespaces().Get(t.Context(), "crud-taken", metav1.GetOptions{})
	if err != nil || ns.DeletionTimestamp != nil {
		t.Fatalf("the existing namespace: %v, deletionTimestamp %v; want it untouched", err, ns.GetDeletionTimestamp())
	}
}

// TestFailingStepCleansUp runs as a user who may do everything but patch
// ConfigMaps: the walk stops at the first ConfigMap patch, names it, and
// deletes the ConfigMap and Namespace it created.
func TestFailingStepCleansUp(t *testing.T) {
	admin := exampletest.Kube(t, env.Config())
	const user, name = "crud-no-patch", "crud-fail"
	grant(t, admin, user, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"*"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "create", "update", "delete"}},
	})
	kc, err := env.UserKubeconfigPath(user)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := runCrud(t, kc, "-n", name)
	if err == nil || !strings.HasPrefix(err.Error(), "ConfigMap.Patch(json) settings: ") || !apierrors.IsForbidden(err) {
		t.Fatalf("err = %v, want a Forbidden error naming ConfigMap.Patch(json) settings", err)
	}
	assertLines(t, out, wantLines(name, false)[:11])
	if _, err := admin.CoreV1().ConfigMaps(name).Get(t.Context(), "settings", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ConfigMap settings after the failure: err = %v, want NotFound", err)
	}
	ns, err := admin.CoreV1().Namespaces().Get(t.Context(), name, metav1.GetOptions{})
	if err != nil || ns.DeletionTimestamp == nil {
		t.Errorf("namespace after the failure: %v, deletionTimestamp %v; want it being deleted", err, ns.GetDeletionTimestamp())
	}
}

func grant(t *testing.T, k kubernetes.Interface, user string, rules []rbacv1.PolicyRule) {
	t.Helper()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: rules}
	if _, err := k.RbacV1().ClusterRoles().Create(t.Context(), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if _, err := k.RbacV1().ClusterRoleBindings().Create(t.Context(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-n", "Not_A_Name"}, `--namespace="Not_A_Name": not a valid Namespace name`},
		{[]string{"--timeout=-1s"}, "--timeout=-1s: must be >= 0"},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
		{[]string{"--nope"}, "unknown flag: --nope"},
	}
	for _, tt := range tests {
		out, _, err := runCrud(t, env.KubeconfigPath(), tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || out != "" {
			t.Errorf("%v: err = %v, stdout %q; want an error containing %q", tt.args, err, out, tt.want)
		}
	}
}

func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"--help"}, &out, &errOut); !errors.Is(err, pflag.ErrHelp) {
		t.Fatalf("err = %v, want ErrHelp", err)
	}
	for _, f := range []string{"--namespace", "--keep", "--timeout", "--kubeconfig", "--context"} {
		if !strings.Contains(errOut.String(), f) {
			t.Errorf("usage does not mention %s:\n%s", f, errOut.String())
		}
	}
}

// TestExitCodes runs main itself: --help exits 0, a failing step exits 1
// with "crud: <step>: <error>" on stderr.
func TestExitCodes(t *testing.T) {
	for _, tt := range []struct {
		args, stderr string
		code         int
	}{
		{"--help", "Usage: crud [flags]", 0},
		{"--kubeconfig " + env.KubeconfigPath() + " -n default", "crud: Namespace.Create default: ", 1},
	} {
		code, stderr := exampletest.ExitCode(t, "CRUD_TEST_MAIN", tt.args)
		if code != tt.code || !strings.HasPrefix(stderr, tt.stderr) {
			t.Errorf("crud %s: exit %d, stderr %q; want exit %d and stderr starting %q", tt.args, code, stderr, tt.code, tt.stderr)
		}
	}
}
