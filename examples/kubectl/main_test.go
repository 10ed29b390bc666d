package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.RunMain(m, func(e *testenv.Env) { env = e }))
}

type outcome struct {
	stdout, stderr string
	code           int
}

func ours(t *testing.T, stdin string, args ...string) outcome {
	t.Helper()
	var out, errOut bytes.Buffer
	err := execute(t.Context(), append(args, "--kubeconfig", env.KubeconfigPath()), strings.NewReader(stdin), &out, &errOut)
	return outcome{out.String(), errOut.String(), exitCode(err)}
}

func real(t *testing.T, cacheDir string, args ...string) outcome {
	t.Helper()
	if args[0] == "delete" {
		args = append(args, "--wait=false")
	}
	cmd := exec.CommandContext(t.Context(), "kubectl", append(args, "--kubeconfig", env.KubeconfigPath(), "--cache-dir", cacheDir)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("kubectl: %v", err)
	}
	return outcome{out.String(), errOut.String(), code}
}

// instantiate copies the side-by-side manifests into a new directory with
// NS replaced by id and REPLICAS by replicas.
func instantiate(t *testing.T, dir, id string, replicas int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "sidebyside", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no side-by-side manifests: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "NS", id)
		s = strings.ReplaceAll(s, "REPLICAS", fmt.Sprint(replicas))
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSideBySideWithKubectl(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl not installed")
	}
	c, err := client.New(client.WithKubeconfig(env.KubeconfigPath()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type tool struct {
		id, dir string
		run     func(args ...string) outcome
	}
	cache := t.TempDir()
	tools := []*tool{{id: "sbs-k"}, {id: "sbs-o"}}
	tools[0].run = func(args ...string) outcome { return real(t, cache, args...) }
	tools[1].run = func(args ...string) outcome {
		if args[0] == "delete" {
			args = append(args, "--wait=false")
		}
		return ours(t, "", args...)
	}
	for _, tl := range tools {
		tl.dir = t.TempDir()
		ns := fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", tl.id)
		ms, err := client.DecodeManifests(t.Context(), strings.NewReader(ns), "ns")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ApplyManifests(t.Context(), ms); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		replicas int
		args     []string // "DIR" is the tool's manifest directory; -n is added unless noNS
		noNS     bool
		wantCode int
		want     string // a line ours must print (stdout or stderr), "" for none
	}{
		{1, []string{"apply", "-f", "DIR/demo.yaml"}, false, 0, "deployment.apps/demo created"},
		{1, []string{"apply", "-f", "DIR/demo.yaml"}, false, 0, "service/demo unchanged"},
		{2, []string{"apply", "-f", "DIR/demo.yaml"}, false, 0, "deployment.apps/demo configured"},
		{2, []string{"apply", "-f", "DIR/invalid.yaml"}, false, 1, `The Service "demo" is invalid: spec.type: Unsupported value: "ClusterIP1"`},
		{2, []string{"apply", "-f", "DIR/two-invalid.yaml"}, false, 1, `Error from server (Invalid): error when creating "DIR/two-invalid.yaml": Service "bad-one" is invalid`},
		{2, []string{"delete", "-f", "DIR/two-invalid.yaml"}, false, 1, `configmap "fine" deleted`},
		{2, []string{"apply", "-f", "DIR/list.yaml", "--dry-run=server"}, false, 0, "configmap/listed-a created (server dry run)"},
		{2, []string{"apply", "-f", "DIR/list.yaml"}, false, 0, "secret/listed-b created"},
		{2, []string{"apply", "-f", "DIR/namespace.yaml"}, true, 0, "configmap/team-settings created"},
		{2, []string{"apply", "-f", "DIR/crd.yaml"}, true, 0, "created"},
		{2, []string{"apply", "-f", "DIR/cr.yaml"}, false, 0, "/two created"},
		{2, []string{"apply", "-f", "DIR/cr.yaml"}, false, 0, "/one unchanged"},
		{2, []string{"apply", "-f", "DIR/broken.yaml"}, true, 1, "ensure CRDs are installed first"},
		{2, []string{"delete", "-f", "DIR/cr.yaml"}, false, 0, `"one" deleted`},
		{2, []string{"delete", "-f", "DIR/list.yaml", "--dry-run=server"}, false, 0, `configmap "listed-a" deleted (server dry run)`},
		{2, []string{"delete", "-f", "DIR/list.yaml"}, false, 0, `secret "listed-b" deleted`},
		{2, []string{"delete", "-f", "DIR/demo.yaml"}, false, 0, `service "demo" deleted`},
		{2, []string{"delete", "-f", "DIR/demo.yaml"}, false, 1, `Error from server (NotFound): error when deleting "DIR/demo.yaml": services "demo" not found`},
		{2, []string{"delete", "-f", "DIR/crd.yaml"}, true, 0, "deleted"},
	}
	for i, s := range steps {
		var got [2]outcome
		for j, tl := range tools {
			instantiate(t, tl.dir, tl.id, s.replicas)
			var args []string
			for _, a := range s.args {
				args = append(args, strings.ReplaceAll(a, "DIR", tl.dir))
			}
			if !s.noNS {
				args = append(args, "-n", tl.id)
			}
			if s.args[1] == "-f" && strings.HasSuffix(s.args[2], "cr.yaml") && s.args[0] == "apply" {
				// Real kubectl needs the CRD served before it maps the CRs.
				waitForKind(t, c, schema.GroupKind{Group: tl.id + ".kubekit.dev", Kind: "Sprocket"})
			}
			o := tl.run(args...)
			norm := func(s string) string {
				return strings.ReplaceAll(strings.ReplaceAll(s, tl.dir, "DIR"), tl.id, "ID")
			}
			got[j] = outcome{norm(o.stdout), norm(o.stderr), o.code}
		}
		k, o := got[0], got[1]
		if k != o {
			t.Errorf("step %d %v differs:\nkubectl (exit %d):\n%s%s\nkubekit (exit %d):\n%s%s", i, s.args, k.code, k.stdout, k.stderr, o.code, o.stdout, o.stderr)
		}
		if o.code != s.wantCode || (s.want != "" && !strings.Contains(o.stdout+o.stderr, s.want)) {
			t.Errorf("step %d %v: exit %d, output\n%s%s\nwant exit %d and %q", i, s.args, o.code, o.stdout, o.stderr, s.wantCode, s.want)
		}
	}
}

func waitForKind(t *testing.T, c *client.Client, gk schema.GroupKind) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		if _, err := c.RESTMapper().RESTMapping(gk); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s not served: %v", gk, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestDemoDirectory(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := filepath.Join("testdata", "demo")
	all := []string{
		"namespace/kubectl-demo",
		"gadget.demo.kubekit.dev/blinker",
		"customresourcedefinition.apiextensions.k8s.io/gadgets.demo.kubekit.dev",
		"configmap/demo-settings",
		"deployment.apps/demo",
	}
	lines := func(suffix string) string {
		var b strings.Builder
		for _, n := range all {
			b.WriteString(n + " " + suffix + "\n")
		}
		return b.String()
	}
	check := func(name string, got outcome, want string, code int) {
		t.Helper()
		if got.stdout != want || got.code != code {
			t.Fatalf("%s: exit %d\n%s%s\nwant exit %d\n%s", name, got.code, got.stdout, got.stderr, code, want)
		}
	}
	check("dry run", ours(t, "", "apply", "-f", filepath.Join(dir, "00-namespace.yaml"), "--dry-run=server"), "namespace/kubectl-demo created (server dry run)\n", 0)
	check("apply", ours(t, "", "apply", "-f", dir), lines("created"), 0)
	check("apply again", ours(t, "", "apply", "-f", dir), lines("unchanged"), 0)

	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: demo-settings, namespace: kubectl-demo}\ndata: {greeting: bonjour}\n"
	check("change via stdin", ours(t, cm, "apply", "-f", "-", "--field-manager", "kubekit"), "configmap/demo-settings configured\n", 0)

	var b strings.Builder
	for _, n := range all {
		kind, name, _ := strings.Cut(n, "/")
		fmt.Fprintf(&b, "%s %q deleted\n", kind, name)
	}
	// The Namespace stays Terminating (no controller-manager): do not wait.
	check("delete", ours(t, "", "delete", "-f", dir, "--wait=false"), b.String(), 0)
}

func TestErrorsAndFlags(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept, namespace: default}\n---\nkind: [\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: elsewhere}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		stdout string
		stderr string
	}{
		{"no -f", []string{"apply"}, "", "error: must specify -f"},
		{"bad dry run", []string{"apply", "-f", bad, "--dry-run=maybe"}, "", `error: invalid dry-run value (maybe)`},
		{"client dry run", []string{"delete", "-f", bad, "--dry-run=client"}, "", "use --dry-run=server"},
		{"unknown flag", []string{"apply", "--nope"}, "", "error: unknown flag: --nope"},
		{"missing file", []string{"apply", "-f", bad + ".missing"}, "", "no such file"},
		{"bad document keeps going", []string{"apply", "-f", bad, "-n", "default", "--dry-run=server"},
			"configmap/kept created (server dry run)\n",
			`manifest "` + bad + `" document 2: invalid YAML or JSON`},
		{"namespace mismatch", []string{"apply", "-f", bad, "-n", "default", "--dry-run=server"}, "",
			`the namespace from the provided object "elsewhere" does not match the namespace "default"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ours(t, "", tt.args...)
			if got.code != 1 || !strings.Contains(got.stderr, tt.stderr) || (tt.stdout != "" && got.stdout != tt.stdout) {
				t.Fatalf("exit %d\nstdout %q\nstderr %q\nwant exit 1, stdout %q, stderr containing %q", got.code, got.stdout, got.stderr, tt.stdout, tt.stderr)
			}
		})
	}
	// run (the process entry point) reads stdin from the process; it still
	// honours flags.
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"apply"}, &out, &errOut); err == nil {
		t.Fatal("run without -f succeeded")
	}
}
