package main

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubekit/kubekit/client"
)

const applySetFull = `apiVersion: v1
kind: ConfigMap
metadata: {name: keep}
data: {a: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: drop}
data: {b: "2"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
`

const applySetSmall = `apiVersion: v1
kind: ConfigMap
metadata: {name: keep}
data: {a: "1"}
`

// TestApplySetSideBySide applies a set and then a smaller one with
// KUBECTL_APPLYSET=true kubectl apply --server-side --prune --applyset and
// with ours, in two namespaces, and compares the parents' labels and
// annotations (tooling aside), the members' labels and the pruned lines.
// Then ours refuses kubectl's set, and kubectl refuses ours.
func TestApplySetSideBySide(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl not installed")
	}
	c, err := client.New(client.WithKubeconfig(env.KubeconfigPath()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()
	cache := t.TempDir()
	t.Setenv("KUBECTL_APPLYSET", "true")
	type tool struct {
		ns      string
		tooling string
		run     func(args ...string) outcome
	}
	tools := []tool{
		{"applyset-k", "kubectl/", func(args ...string) outcome {
			return kubectlRun(t, cache, append(args, "--server-side")...)
		}},
		{"applyset-o", "kubekit/", func(args ...string) outcome { return ours(t, "", args...) }},
	}
	write := func(content string) string {
		f := filepath.Join(t.TempDir(), "set.yaml")
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	full, small := write(applySetFull), write(applySetSmall)
	for _, tl := range tools {
		if got := ours(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+tl.ns+"}\n", "apply", "-f", "-"); got.code != 0 {
			t.Fatal(got)
		}
	}
	type parentState struct {
		labels, annotations map[string]string
	}
	var parents [2]parentState
	var members [2]map[string]string
	var prunedLines [2]string
	for j, tl := range tools {
		if got := tl.run("apply", "--prune", "--applyset=set", "-n", tl.ns, "-f", full); got.code != 0 {
			t.Fatalf("%s: first apply: %+v", tl.ns, got)
		}
		set, err := client.ParseApplySet("set", tl.ns)
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Kubernetes().CoreV1().Secrets(tl.ns).Get(ctx, "set", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: no parent Secret: %v", tl.ns, err)
		}
		if p.Labels[client.ApplySetIDLabel] != set.ID() {
			t.Errorf("%s: parent id label %q, want %q (kubectl's computation)", tl.ns, p.Labels[client.ApplySetIDLabel], set.ID())
		}
		if ann := p.Annotations[client.ApplySetGroupKindsAnnotation]; ann != "ConfigMap,Deployment.apps" {
			t.Errorf("%s: after the full set, contains-group-kinds %q", tl.ns, ann)
		}
		got := tl.run("apply", "--prune", "--applyset=secrets/set", "-n", tl.ns, "-f", small)
		if got.code != 0 {
			t.Fatalf("%s: second apply: %+v", tl.ns, got)
		}
		var lines []string
		for _, l := range strings.Split(got.stdout, "\n") {
			if strings.HasSuffix(l, " pruned") {
				lines = append(lines, l)
			}
		}
		slices.Sort(lines) // kubectl prunes kinds in map order
		prunedLines[j] = strings.Join(lines, "\n")

		p, err = c.Kubernetes().CoreV1().Secrets(tl.ns).Get(ctx, "set", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p.Annotations[client.ApplySetToolingAnnotation], tl.tooling) {
			t.Errorf("%s: tooling %q, want %s...", tl.ns, p.Annotations[client.ApplySetToolingAnnotation], tl.tooling)
		}
		delete(p.Annotations, client.ApplySetToolingAnnotation)
		p.Labels[client.ApplySetIDLabel] = strings.ReplaceAll(p.Labels[client.ApplySetIDLabel], set.ID(), "ID")
		parents[j] = parentState{p.Labels, p.Annotations}
		cm, err := c.Kubernetes().CoreV1().ConfigMaps(tl.ns).Get(ctx, "keep", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		members[j] = cm.Labels
		members[j][client.ApplySetPartOfLabel] = strings.ReplaceAll(members[j][client.ApplySetPartOfLabel], set.ID(), "ID")
		for _, gone := range []*unstructured.Unstructured{unstructuredObj("v1", "ConfigMap", tl.ns, "drop"), unstructuredObj("apps/v1", "Deployment", tl.ns, "web")} {
			if err := c.Get(ctx, gone); client.IgnoreNotFound(err) != nil || err == nil {
				t.Errorf("%s: %s not pruned: %v", tl.ns, client.KubectlName(gone), err)
			}
		}
	}
	wantPruned := "configmap/drop pruned\ndeployment.apps/web pruned"
	if prunedLines[0] != prunedLines[1] || prunedLines[1] != wantPruned {
		t.Errorf("pruned lines:\nkubectl:\n%s\nkubekit:\n%s\nwant:\n%s", prunedLines[0], prunedLines[1], wantPruned)
	}
	if !maps.Equal(parents[0].labels, parents[1].labels) || !maps.Equal(parents[0].annotations, parents[1].annotations) {
		t.Errorf("parents differ:\nkubectl %+v\nkubekit %+v", parents[0], parents[1])
	}
	if want := "ConfigMap"; parents[1].annotations[client.ApplySetGroupKindsAnnotation] != want {
		t.Errorf("contains-group-kinds after the small set: %q, want %q", parents[1].annotations[client.ApplySetGroupKindsAnnotation], want)
	}
	if !maps.Equal(members[0], members[1]) || members[1][client.ApplySetPartOfLabel] != "ID" {
		t.Errorf("member labels differ or lack part-of:\nkubectl %v\nkubekit %v", members[0], members[1])
	}

	// Each refuses the other's set.
	got := ours(t, "", "apply", "--prune", "--applyset=set", "-n", tools[0].ns, "-f", small)
	if got.code != 1 || !strings.Contains(got.stderr, `is managed by tooling "kubectl" instead of "kubekit"`) {
		t.Errorf("ours on kubectl's set: %+v", got)
	}
	got = tools[0].run("apply", "--prune", "--applyset=set", "-n", tools[1].ns, "-f", small)
	if got.code == 0 || !strings.Contains(got.stderr, `is managed by tooling "kubekit" instead of "kubectl"`) {
		t.Errorf("kubectl on ours: %+v", got)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--applyset=set"}, "error: --applyset requires --prune"},
		{[]string{"--prune"}, "error: --prune requires --applyset"},
		{[]string{"--prune", "--applyset=deployments/set"}, "kubekit supports Secret and ConfigMap parents"},
	} {
		got := ours(t, "", append([]string{"apply", "-n", tools[1].ns, "-f", small}, bad.args...)...)
		if got.code != 1 || !strings.Contains(got.stderr, bad.want) {
			t.Errorf("%v: %+v, want %q", bad.args, got, bad.want)
		}
	}
}

func unstructuredObj(apiVersion, kind, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}
