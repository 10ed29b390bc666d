package client_test

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kubekit/kubekit/client"
)

func TestStatusUpdatePatchApply(t *testing.T) {
	c := newClient(t)
	defer c.Close()
	ctx := t.Context()
	d := deployment("default", "status-demo", 1)
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	// Update writes status only: the replicas change in the same object is ignored.
	d.Status.ObservedGeneration = d.Generation
	d.Status.Replicas = 1
	d.Spec.Replicas = ptr.To[int32](5)
	if err := c.Status().Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	got := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "status-demo", Namespace: "default"}}
	if err := c.Get(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got.Status.ObservedGeneration != got.Generation || got.Status.Replicas != 1 || *got.Spec.Replicas != 1 {
		t.Fatalf("after Status().Update: status %+v, spec.replicas %d", got.Status, *got.Spec.Replicas)
	}

	if err := c.Status().Patch(ctx, got, client.MergePatch([]byte(`{"status":{"readyReplicas":1,"availableReplicas":1}}`))); err != nil {
		t.Fatal(err)
	}
	if got.Status.ReadyReplicas != 1 || got.Status.AvailableReplicas != 1 {
		t.Fatalf("after Status().Patch: %+v", got.Status)
	}

	cond := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "status-demo", "namespace": "default"},
		"status": map[string]any{"conditions": []any{map[string]any{
			"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "lastTransitionTime": "2026-01-01T00:00:00Z",
		}}},
	}}
	outcome, err := c.Status().Apply(ctx, cond, client.FieldManager("status-test"))
	if err != nil || outcome != client.Configured {
		t.Fatalf("Status().Apply = %s, %v; want configured", outcome, err)
	}
	if outcome, err = c.Status().Apply(ctx, cond.DeepCopy(), client.FieldManager("status-test")); err != nil || outcome != client.Unchanged {
		t.Fatalf("Status().Apply again = %s, %v; want unchanged", outcome, err)
	}
	if err := c.Get(ctx, got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Conditions) != 1 || got.Status.Conditions[0].Type != appsv1.DeploymentAvailable || got.Status.ReadyReplicas != 1 {
		t.Fatalf("after Status().Apply: %+v", got.Status)
	}

	// A kind without a status subresource is the server's NotFound.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "no-status", Namespace: "default"}}
	if err := c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := c.Status().Update(ctx, cm); !apierrors.IsNotFound(err) {
		t.Fatalf("Status().Update of a ConfigMap = %v, want NotFound", err)
	}
	if err := c.Status().Patch(ctx, got, client.Patch{Type: "application/apply-patch+yaml", Data: []byte("{}")}); err == nil || !strings.Contains(err.Error(), "use Apply") {
		t.Fatalf("Status().Patch with an apply patch = %v", err)
	}
}

func TestScale(t *testing.T) {
	c := newClient(t)
	defer c.Close()
	ctx := t.Context()
	d := deployment("default", "scale-demo", 1)
	if err := c.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	s, err := c.GetScale(ctx, d)
	if err != nil || s.Spec.Replicas != 1 || s.Status.Selector != "app=scale-demo" {
		t.Fatalf("GetScale = %+v, %v", s, err)
	}
	if s, err = c.Scale(ctx, d, 3); err != nil || s.Spec.Replicas != 3 {
		t.Fatalf("Scale(3) = %+v, %v", s, err)
	}
	if err := c.Get(ctx, d); err != nil || *d.Spec.Replicas != 3 {
		t.Fatalf("Deployment after Scale(3): replicas %d, %v", *d.Spec.Replicas, err)
	}
	if _, err := c.Scale(ctx, d, -1); err == nil || !strings.Contains(err.Error(), "Scale(-1)") {
		t.Fatalf("Scale(-1) = %v", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "not-scalable", Namespace: "default"}}
	if _, err := c.GetScale(ctx, cm); !apierrors.IsNotFound(err) {
		t.Fatalf("GetScale of a ConfigMap = %v, want NotFound", err)
	}
}

func TestEvict(t *testing.T) {
	c := newClient(t)
	defer c.Close()
	ctx := t.Context()
	ns := "evict-demo"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	newPod := func(name string, labels map[string]string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if err := c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newPod("free", nil)
	if err := c.Evict(ctx, p, client.DryRun(true)); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, p); err != nil {
		t.Fatalf("the dry-run eviction removed the Pod: %v", err)
	}
	if err := c.Evict(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, p); !apierrors.IsNotFound(err) {
		t.Fatalf("Pod after eviction: %v, want NotFound (an unbound Pod goes at once)", err)
	}

	// A PodDisruptionBudget that allows no disruption makes the eviction of
	// a running Pod a 429 (a Pending one may always go).
	guarded := newPod("guarded", map[string]string{"app": "db"})
	guarded.Status.Phase = corev1.PodRunning
	if err := c.Status().Update(ctx, guarded); err != nil {
		t.Fatal(err)
	}
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}}
	if err := c.Create(ctx, pdb); err != nil {
		t.Fatal(err)
	}
	// The disruption controller would write this status; without one, the
	// API server waits for it before it answers.
	pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptionsAllowed: 0,
		CurrentHealthy: 0, DesiredHealthy: 1, ExpectedPods: 1}
	if err := c.Status().Update(ctx, pdb); err != nil {
		t.Fatal(err)
	}
	if err := c.Evict(ctx, guarded); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("Evict under a PDB = %v, want 429 TooManyRequests", err)
	}
	if err := c.Get(ctx, guarded); err != nil {
		t.Fatalf("the guarded Pod is gone: %v", err)
	}
	if err := c.Evict(ctx, nil); err == nil {
		t.Fatal("Evict(nil) = nil")
	}
	// A write option (FieldManager) does not compile with Evict:
	// testdata/nocompile, TestMisplacedOptionsDoNotCompile.
	if err := c.Evict(ctx, guarded, client.GracePeriodSeconds(-1)); err == nil || !strings.Contains(err.Error(), "client: GracePeriodSeconds(-1): must be >= 0") {
		t.Fatalf("Evict with a negative grace period = %v", err)
	}
}

// TestDeletePreconditions: a delete conditional on a uid does not delete an
// object re-created under the same name.
func TestDeletePreconditions(t *testing.T) {
	c := newClient(t)
	defer c.Close()
	ctx := t.Context()
	old := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "precond", Namespace: "default"}}
	if err := c.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	oldUID := old.UID
	if err := c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "precond", Namespace: "default"}}); err != nil {
		t.Fatal(err)
	}
	fresh := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "precond", Namespace: "default"}}
	if err := c.Create(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	stub := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "precond", Namespace: "default"}}
	if err := c.Delete(ctx, stub, client.Preconditions{UID: &oldUID}); !apierrors.IsConflict(err) {
		t.Fatalf("Delete with the old uid = %v, want 409 Conflict", err)
	}
	if err := c.Get(ctx, stub); err != nil || stub.UID != fresh.UID {
		t.Fatalf("the re-created object is gone or changed: %v", err)
	}
	if err := c.Delete(ctx, stub, client.Preconditions{UID: &fresh.UID}); err != nil {
		t.Fatalf("Delete with the current uid = %v", err)
	}
}
