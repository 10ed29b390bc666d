package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const forceJob = `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: IMAGE}]
`

// TestForceSideBySide changes a Job's (immutable) Pod template: plain apply
// fails, apply --force deletes and re-creates it and reports "configured",
// as kubectl apply --force does. Then --server-side and --force-conflicts
// from kubectl scripts, and the flag combinations kubectl refuses.
func TestForceSideBySide(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl not installed")
	}
	cache := t.TempDir()
	t.Setenv("KUBECTL_APPLYSET", "true") // kubectl knows --applyset only then
	tools := []struct {
		ns  string
		run func(args ...string) outcome
	}{
		{"force-k", func(args ...string) outcome { return kubectlRun(t, cache, args...) }},
		{"force-o", func(args ...string) outcome { return ours(t, "", args...) }},
	}
	dir := t.TempDir()
	v1, v2 := filepath.Join(dir, "v1.yaml"), filepath.Join(dir, "v2.yaml")
	for f, image := range map[string]string{v1: "busybox:1.36", v2: "busybox:1.37"} {
		if err := os.WriteFile(f, []byte(strings.ReplaceAll(forceJob, "IMAGE", image)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tl := range tools {
		if got := ours(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+tl.ns+"}\n", "apply", "-f", "-"); got.code != 0 {
			t.Fatal(got)
		}
	}
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"apply", "-f", v1}, 0, "job.batch/migrate created\n"},
		{[]string{"apply", "-f", v2, "--force"}, 0, "job.batch/migrate configured\n"},
		{[]string{"apply", "-f", v1, "--force", "--prune", "--applyset=s"}, 1, "error: --force cannot be used with --prune\n"},
		{[]string{"apply", "-f", v1, "--force", "--dry-run=server"}, 1, "error: --dry-run=server cannot be used with --force\n"},
		{[]string{"apply", "-f", v1, "--force", "--server-side"}, 1, "error: --force cannot be used with --server-side\n"},
	}
	for _, s := range steps {
		var got [2]outcome
		for j, tl := range tools {
			o := tl.run(append(s.args, "-n", tl.ns)...)
			got[j] = outcome{o.stdout, strings.ReplaceAll(o.stderr, tl.ns, "ID"), o.code}
		}
		if got[0] != got[1] {
			t.Errorf("%v: kubectl %+v\nkubekit %+v", s.args, got[0], got[1])
		}
		if o := got[1]; o.code != s.code || o.stdout+o.stderr != s.want {
			t.Errorf("%v: %+v, want exit %d and %q", s.args, o, s.code, s.want)
		}
	}
	// Without --force ours fails as kubectl's server-side apply does.
	o := ours(t, "", "apply", "-f", v1, "-n", tools[1].ns)
	if o.code != 1 || !strings.Contains(o.stderr, "field is immutable") {
		t.Errorf("apply of an immutable change without --force: %+v", o)
	}
	// Scripts written for kubectl --server-side run unchanged.
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: owned, namespace: " + tools[1].ns + "}\ndata: {k: VALUE}\n"
	if o := ours(t, strings.ReplaceAll(cm, "VALUE", "a"), "apply", "--server-side", "-f", "-"); o.code != 0 || o.stdout != "configmap/owned created\n" {
		t.Fatalf("apply --server-side: %+v", o)
	}
	if o := ours(t, strings.ReplaceAll(cm, "VALUE", "b"), "apply", "--server-side", "--field-manager=other", "-f", "-"); o.code != 1 || !strings.Contains(o.stderr, "conflict") {
		t.Errorf("apply by another manager: %+v, want a conflict", o)
	}
	if o := ours(t, strings.ReplaceAll(cm, "VALUE", "b"), "apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-"); o.code != 0 || o.stdout != "configmap/owned configured\n" {
		t.Errorf("apply --force-conflicts: %+v", o)
	}
}
