package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubekit/kubekit/client"
)

// lockedBuffer is a bytes.Buffer safe to read while a command writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const waitManifests = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a: b}
`

// setStatus writes the Deployment's status through the status subresource,
// as the deployment controller would (the test control plane has none).
func setStatus(t *testing.T, c *client.Client, ns string, st appsv1.DeploymentStatus) {
	t.Helper()
	d, err := c.Kubernetes().AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st.ObservedGeneration = d.Generation
	d.Status = st
	if _, err := c.Kubernetes().AppsV1().Deployments(ns).UpdateStatus(t.Context(), d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for !f() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestWaitForReadyDrivenStatus applies a Deployment and a ConfigMap, runs
// wait --for=ready, and drives the Deployment's status through the status
// subresource: InProgress until the status says the replica is available,
// then Current and exit 0. Then condition=, delete, a timeout and a Failed
// rollout.
func TestWaitForReadyDrivenStatus(t *testing.T) {
	c, err := client.New(client.WithKubeconfig(env.KubeconfigPath()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ns := "wait-ready"
	if got := ours(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n", "apply", "-f", "-"); got.code != 0 {
		t.Fatalf("namespace: %+v", got)
	}
	file := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(file, []byte(waitManifests), 0o600); err != nil {
		t.Fatal(err)
	}
	depOnly := filepath.Join(t.TempDir(), "deployment.yaml")
	if err := os.WriteFile(depOnly, []byte(strings.Split(waitManifests, "---")[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := ours(t, "", "apply", "-f", file, "-n", ns); got.code != 0 {
		t.Fatalf("apply: %+v", got)
	}

	var out, errOut lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- execute(t.Context(), []string{"wait", "-f", file, "-n", ns, "--for=ready", "--timeout=30s", "--kubeconfig", env.KubeconfigPath()}, strings.NewReader(""), &out, &errOut)
	}()
	eventually(t, "deployment reported InProgress", func() bool {
		return strings.Contains(out.String(), "deployment.apps/web InProgress: Replicas: 0/1\n")
	})
	setStatus(t, c, ns, appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1})
	eventually(t, "deployment reported the next step", func() bool {
		return strings.Contains(out.String(), "deployment.apps/web InProgress: Available: 0/1\n")
	})
	select {
	case err := <-done:
		t.Fatalf("wait ended before the Deployment was available: %v\n%s%s", err, out.String(), errOut.String())
	default:
	}
	setStatus(t, c, ns, appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: "True", Reason: "MinimumReplicasAvailable"},
			{Type: appsv1.DeploymentProgressing, Status: "True", Reason: "NewReplicaSetAvailable"},
		}})
	if err := <-done; err != nil {
		t.Fatalf("wait --for=ready: %v\n%s%s", err, out.String(), errOut.String())
	}
	want := []string{
		"deployment.apps/web InProgress: Replicas: 0/1",
		"configmap/settings Current: Resource is always ready",
		"deployment.apps/web InProgress: Available: 0/1",
		"deployment.apps/web Current: Deployment is available. Replicas: 1",
	}
	if got := strings.TrimSpace(out.String()); got != strings.Join(want, "\n") {
		t.Errorf("wait --for=ready printed\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}

	tests := []struct {
		name   string
		args   []string
		before func()
		code   int
		stdout string
		stderr string
	}{
		{name: "condition met", args: []string{"--for=condition=Available", "-f", depOnly}, code: 0,
			stdout: "deployment.apps/web condition met\n"},
		{name: "condition value", args: []string{"--for=condition=available=false", "--timeout=300ms", "-f", depOnly}, code: 1,
			stderr: "error: timed out waiting for the condition on deployments/web\n"},
		{name: "failed rollout", args: []string{"--for=ready"}, code: 1,
			before: func() {
				setStatus(t, c, ns, appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, Conditions: []appsv1.DeploymentCondition{
					{Type: appsv1.DeploymentProgressing, Status: "False", Reason: "ProgressDeadlineExceeded"}}})
			},
			stdout: "deployment.apps/web Failed: Progress deadline exceeded\nconfigmap/settings Current: Resource is always ready\n",
			stderr: "error: deployment.apps/web failed: Progress deadline exceeded\n"},
		{name: "not deleted", args: []string{"--for=delete", "--timeout=300ms"}, code: 1,
			stderr: "error: timed out waiting for the condition on deployments/web, configmaps/settings\n"},
		{name: "deleted", args: []string{"--for=delete"}, code: 0,
			before: func() {
				if got := ours(t, "", "delete", "-f", file, "-n", ns, "--wait=false"); got.code != 0 {
					t.Fatalf("delete: %+v", got)
				}
			},
			stdout: "deployment.apps/web condition met\nconfigmap/settings condition met\n"},
		{name: "condition on a missing object", args: []string{"--for=condition=Available", "-f", depOnly}, code: 1,
			stderr: `Error from server (NotFound): deployments.apps "web" not found` + "\n"},
		{name: "bad --for", args: []string{"--for=green"}, code: 1, stderr: `error: unrecognized condition: "green"`},
		{name: "no --for", args: nil, code: 1, stderr: "error: --for must be given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			args := append([]string{"wait", "-n", ns}, tt.args...)
			if !slices.Contains(args, depOnly) {
				args = append(args, "-f", file)
			}
			got := ours(t, "", args...)
			if got.code != tt.code || got.stdout != tt.stdout || !strings.HasPrefix(got.stderr, tt.stderr) {
				t.Errorf("exit %d\nstdout %q\nstderr %q\nwant exit %d, stdout %q, stderr starting %q", got.code, got.stdout, got.stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}
