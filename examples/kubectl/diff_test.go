package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const diffBase = `apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: NS}
data: {color: blue, size: "3"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: NS}
stringData: {user: admin, password: hunter2}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
`

const diffChanged = `apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: NS}
data: {color: green, size: "3"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: NS}
stringData: {user: admin, password: swordfish, token: abc}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: added, namespace: NS}
data: {new: "yes"}
`

const diffInvalid = `apiVersion: v1
kind: Service
metadata: {name: bad, namespace: NS}
spec: {type: ClusterIP1, ports: [{port: 80}]}
`

// diffNoise is what legitimately differs between two runs: kubectl's
// temporary directories, the headers' times and each object's identity.
var diffNoise = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`/[^ \t\n]*/(LIVE|MERGED)-\d+/`), "$1/"},
	{regexp.MustCompile(`\t\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ [+-]\d{4}`), "\tTIME"},
	{regexp.MustCompile(`(uid|resourceVersion|creationTimestamp): .*`), "$1: X"},
}

// TestDiffSideBySide runs kubectl diff --server-side and ours on the same
// objects in two namespaces: nothing changed, changes (a ConfigMap, a
// Secret's data, which both mask, a Deployment, a new object) and an invalid
// object, comparing output and exit status.
func TestDiffSideBySide(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl not installed")
	}
	if _, err := exec.LookPath("diff"); err != nil {
		t.Skip("diff(1) not installed: kubectl diff needs it")
	}
	cache := t.TempDir()
	type tool struct {
		ns  string
		run func(args ...string) outcome
	}
	tools := []tool{
		{"diff-k", func(args ...string) outcome {
			return kubectlRun(t, cache, append(args, "--server-side", "--field-manager=kubekit")...)
		}},
		{"diff-o", func(args ...string) outcome { return ours(t, "", args...) }},
	}
	write := func(t *testing.T, ns, content string) string {
		t.Helper()
		f := filepath.Join(t.TempDir(), "m.yaml")
		if err := os.WriteFile(f, []byte(strings.ReplaceAll(content, "NS", ns)), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tl := range tools {
		ns := "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + tl.ns + "}\n"
		if got := ours(t, ns, "apply", "-f", "-"); got.code != 0 {
			t.Fatal(got)
		}
		if got := ours(t, "", "apply", "-f", write(t, tl.ns, diffBase)); got.code != 0 {
			t.Fatal(got)
		}
	}
	steps := []struct {
		name     string
		content  string
		code     int
		contains []string // in ours' normalised stdout+stderr
	}{
		{"unchanged", diffBase, 0, nil},
		{"changed", diffChanged, 1, []string{
			"diff -u -N LIVE/v1.ConfigMap.ID.settings MERGED/v1.ConfigMap.ID.settings\n--- LIVE/v1.ConfigMap.ID.settings\tTIME\n+++ MERGED/v1.ConfigMap.ID.settings\tTIME\n",
			"-  color: blue\n+  color: green\n",
			"-  password: '*** (before)'\n+  password: '*** (after)'\n",
			"+  token: '***'\n",
			"-  replicas: 1\n+  replicas: 3\n",
			"--- LIVE/v1.ConfigMap.ID.added\tTIME\n+++ MERGED/v1.ConfigMap.ID.added\tTIME\n@@ -0,0 +1,",
		}},
		{"invalid", diffInvalid, 2, []string{`The Service "bad" is invalid: spec.type: Unsupported value: "ClusterIP1"`}},
	}
	for _, s := range steps {
		var got [2]outcome
		for j, tl := range tools {
			o := tl.run("diff", "-f", write(t, tl.ns, s.content))
			norm := func(x string) string {
				for _, n := range diffNoise {
					x = n.re.ReplaceAllString(x, n.with)
				}
				return strings.ReplaceAll(x, tl.ns, "ID")
			}
			got[j] = outcome{norm(o.stdout), norm(o.stderr), o.code}
		}
		if got[0] != got[1] {
			t.Errorf("%s: differs:\nkubectl (exit %d):\n%s%s\nkubekit (exit %d):\n%s%s", s.name, got[0].code, got[0].stdout, got[0].stderr, got[1].code, got[1].stdout, got[1].stderr)
		}
		if got[1].code != s.code {
			t.Errorf("%s: exit %d, want %d", s.name, got[1].code, s.code)
		}
		for _, want := range s.contains {
			if !strings.Contains(got[1].stdout+got[1].stderr, want) {
				t.Errorf("%s: output lacks %q:\n%s%s", s.name, want, got[1].stdout, got[1].stderr)
			}
		}
		if strings.Contains(got[1].stdout, "managedFields") || strings.Contains(got[1].stdout, "hunter2") || strings.Contains(got[1].stdout, "aHVudGVyMg") {
			t.Errorf("%s: managedFields or a secret value shown:\n%s", s.name, got[1].stdout)
		}
	}
}
