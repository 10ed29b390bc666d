package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubekit/kubekit/client"
)

// kubectlRun runs the installed kubectl as is (delete waits by default).
func kubectlRun(t *testing.T, cacheDir string, args ...string) outcome {
	t.Helper()
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

// klogLine matches kubectl's own klog noise (its watch closing at the
// timeout, say), which is not part of its output contract.
var klogLine = regexp.MustCompile(`(?m)^[IWE]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [^ ]+:\d+\] .*\n`)

const jobYAML = `apiVersion: batch/v1
kind: Job
metadata: {name: NAME}
spec:
  template:
    spec:
      restartPolicy: Never
      nodeSelector: {beta.kubernetes.io/os: linux}
      containers: [{name: main, image: busybox}]
`

// TestCascadeAndWarningsSideBySide applies a Job (its Pod template uses a
// deprecated node label, so the server warns), gives it a Pod it owns, then
// deletes it with each --cascade, with kubectl and with ours, and compares
// the output and what the delete left on the server. The test control plane
// has no garbage collector, so what shows the policy the server received is
// the Job itself: gone (background), or kept with the foregroundDeletion or
// orphan finalizer.
func TestCascadeAndWarningsSideBySide(t *testing.T) {
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
	tools := []struct {
		ns  string
		run func(args ...string) outcome
	}{
		{"cascade-k", func(args ...string) outcome { return kubectlRun(t, cache, args...) }},
		{"cascade-o", func(args ...string) outcome { return ours(t, "", args...) }},
	}
	for _, tl := range tools {
		if _, err := c.Apply(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tl.ns}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Apply(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: tl.ns}}); err != nil {
			t.Fatal(err)
		}
	}
	const warning = `Warning: spec.template.spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use "kubernetes.io/os" instead`
	steps := []struct {
		cascade string
		extra   []string
		code    int
		stderr  string // a line both must print
		left    string // the Job's state after the delete
	}{
		{"background", nil, 0, "", "gone"},
		{"foreground", []string{"--timeout=1s"}, 1, "error: timed out waiting for the condition on jobs/job-foreground", "finalizers=[foregroundDeletion]"},
		{"orphan", []string{"--wait=false"}, 0, "", "finalizers=[orphan]"},
	}
	for _, s := range steps {
		name := "job-" + s.cascade
		var got [2][2]outcome
		var left [2]string
		for j, tl := range tools {
			file := filepath.Join(t.TempDir(), "job.yaml")
			if err := os.WriteFile(file, []byte(strings.ReplaceAll(jobYAML, "NAME", name)), 0o600); err != nil {
				t.Fatal(err)
			}
			applied := tl.run("apply", "-f", file, "-n", tl.ns)
			job, err := c.Kubernetes().BatchV1().Jobs(tl.ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("%s: job not created: %v\n%s%s", tl.ns, err, applied.stdout, applied.stderr)
			}
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name + "-pod", Namespace: tl.ns, OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "batch/v1", Kind: "Job", Name: name, UID: job.UID,
					Controller: new(true), BlockOwnerDeletion: new(true),
				}}},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
			}
			if err := c.Create(ctx, pod); err != nil {
				t.Fatal(err)
			}
			deleted := tl.run(append([]string{"delete", "-f", file, "-n", tl.ns, "--cascade=" + s.cascade}, s.extra...)...)
			norm := func(o outcome) outcome {
				o.stdout = strings.ReplaceAll(o.stdout, file, "FILE")
				o.stderr = klogLine.ReplaceAllString(strings.ReplaceAll(o.stderr, file, "FILE"), "")
				return o
			}
			got[j] = [2]outcome{norm(applied), norm(deleted)}
			left[j] = jobState(t, c, tl.ns, name)
		}
		if got[0] != got[1] {
			t.Errorf("--cascade=%s: output differs:\nkubectl: %+v\nkubekit: %+v", s.cascade, got[0], got[1])
		}
		o := got[1]
		if o[0].code != 0 || !strings.Contains(o[0].stderr, warning+"\n") || strings.Count(o[0].stderr, "Warning:") != 1 {
			t.Errorf("--cascade=%s: apply: exit %d, stderr %q; want exit 0 and the warning once: %q", s.cascade, o[0].code, o[0].stderr, warning)
		}
		if o[1].code != s.code || !strings.Contains(o[1].stderr, s.stderr) || strings.Contains(o[1].stderr, "child pods are preserved") {
			t.Errorf("--cascade=%s: delete: exit %d, stderr %q; want exit %d and %q, no orphaning warning", s.cascade, o[1].code, o[1].stderr, s.code, s.stderr)
		}
		if want := fmt.Sprintf("job.batch %q deleted\n", name); o[1].stdout != want {
			t.Errorf("--cascade=%s: delete printed %q, want %q", s.cascade, o[1].stdout, want)
		}
		if left[0] != left[1] || left[1] != s.left {
			t.Errorf("--cascade=%s: job left as kubectl %q, kubekit %q; want %q", s.cascade, left[0], left[1], s.left)
		}
	}
}

func jobState(t *testing.T, c *client.Client, ns, name string) string {
	t.Helper()
	job, err := c.Kubernetes().BatchV1().Jobs(ns).Get(t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "gone"
	}
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("finalizers=%v", job.Finalizers)
}
