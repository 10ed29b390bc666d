package client_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubekit/kubekit/client"
)

func job(ns, name string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			NodeSelector:  map[string]string{"beta.kubernetes.io/os": "linux"}, // the server warns
			Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
		}}},
	}
}

// TestDeletePropagationAndWarnings checks that deletes send Background by
// default (the server would orphan a Job's Pods and warn otherwise), that
// Foreground and Orphan reach the server (the test control plane has no
// garbage collector, so the Job keeps the matching finalizer), and that API
// warnings go to the client's logger once each.
func TestDeletePropagationAndWarnings(t *testing.T) {
	var mu sync.Mutex
	var logged []string
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, args)
	}, funcr.Options{})
	c := newClient(t, client.WithLogger(log))
	defer c.Close()
	ctx := t.Context()
	ns := writeNamespace(t, c, "delete-propagation")

	for _, name := range []string{"default", "foreground", "orphan"} {
		if err := c.Create(ctx, job(ns, name)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	warned := strings.Count(strings.Join(logged, "\n"), `beta.kubernetes.io/os]: deprecated since v1.14`)
	mu.Unlock()
	if warned != 1 {
		t.Errorf("the deprecation warning was logged %d times for 3 creates, want once: %q", warned, logged)
	}

	if err := c.Delete(ctx, job(ns, "default")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Kubernetes().BatchV1().Jobs(ns).Get(ctx, "default", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after a default delete the Job is still there (%v): the delete was not Background", err)
	}
	mu.Lock()
	if s := strings.Join(logged, "\n"); strings.Contains(s, "child pods are preserved") {
		t.Errorf("the server warned about orphaned pods: %s", s)
	}
	mu.Unlock()

	ms := []client.Manifest{{Source: "test", Index: 1, Object: toUnstructured(t, job(ns, "foreground"))}}
	rs, err := c.DeleteManifests(ctx, ms, client.PropagationPolicy(metav1.DeletePropagationForeground))
	if err != nil {
		t.Fatal(err)
	}
	live, err := c.Kubernetes().BatchV1().Jobs(ns).Get(ctx, "foreground", metav1.GetOptions{})
	if err != nil || len(live.Finalizers) != 1 || live.Finalizers[0] != metav1.FinalizerDeleteDependents {
		t.Fatalf("foreground delete left %v, %v; want the Job with the foregroundDeletion finalizer", live, err)
	}
	if rs[0].Object.GetUID() != live.UID {
		t.Errorf("result uid %q, want the deleted object's %q", rs[0].Object.GetUID(), live.UID)
	}

	// Wait for it to be gone: it times out while the finalizer stays, with
	// kstatus's Terminating, then returns once the finalizer is removed.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = c.Wait(short, []client.Object{rs[0].Object}, client.ForDeleted(), client.PollInterval(50*time.Millisecond))
	var werr *client.WaitError
	if !errors.As(err, &werr) || !errors.Is(err, context.DeadlineExceeded) || len(werr.Pending) != 1 || werr.Pending[0].Status != client.Terminating {
		t.Fatalf("Wait on a Job held by a finalizer: %v; want a *WaitError with it Terminating and DeadlineExceeded", err)
	}
	if werr.Pending[0].Name != "job.batch/foreground" || werr.Pending[0].Resource.Resource != "jobs" {
		t.Errorf("pending %+v, want job.batch/foreground in jobs", werr.Pending[0])
	}
	var changes []client.Status
	done := make(chan error, 1)
	go func() {
		_, err := c.Wait(ctx, []client.Object{rs[0].Object}, client.ForDeleted(), client.PollInterval(50*time.Millisecond),
			client.OnStatus(func(r client.WaitResult) { changes = append(changes, r.Status) }))
		done <- err
	}()
	if err := c.Patch(ctx, job(ns, "foreground"), client.MergePatch([]byte(`{"metadata":{"finalizers":null}}`))); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Wait after the finalizer was removed: %v", err)
	}
	if len(changes) == 0 || changes[len(changes)-1] != client.NotFound {
		t.Errorf("status changes %v, want them to end with NotFound", changes)
	}

	if err := c.Delete(ctx, job(ns, "orphan"), client.PropagationPolicy(metav1.DeletePropagationOrphan)); err != nil {
		t.Fatal(err)
	}
	live, err = c.Kubernetes().BatchV1().Jobs(ns).Get(ctx, "orphan", metav1.GetOptions{})
	if err != nil || len(live.Finalizers) != 1 || live.Finalizers[0] != metav1.FinalizerOrphanDependents {
		t.Fatalf("orphan delete left %v, %v; want the Job with the orphan finalizer", live, err)
	}
	// A uid that no longer matches counts as deleted (re-created since).
	stale := job(ns, "orphan")
	stale.UID = types.UID("00000000-0000-0000-0000-000000000000")
	if _, err := c.Wait(ctx, []client.Object{stale}, client.ForDeleted()); err != nil {
		t.Errorf("Wait for a uid that is gone: %v", err)
	}
}

func TestWarningHandlerOption(t *testing.T) {
	_, err := client.New(client.WithKubeconfig(env.KubeconfigPath()), client.WithWarningHandler(nil))
	if err == nil || !strings.Contains(err.Error(), "WithWarningHandler(nil)") {
		t.Fatalf("WithWarningHandler(nil): %v, want an error naming it", err)
	}
	var got []string
	h := handlerFunc(func(code int, text string) { got = append(got, text) })
	c := newClient(t, client.WithWarningHandler(h))
	defer c.Close()
	ns := writeNamespace(t, c, "warning-handler")
	for range 2 {
		if err := c.Create(t.Context(), job(ns, "j"), client.DryRun(true)); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 || !strings.Contains(got[0], "beta.kubernetes.io/os") {
		t.Errorf("handler got %q, want the deprecation warning for each of the 2 requests (no dedup: the handler decides)", got)
	}
}

type handlerFunc func(code int, text string)

func (f handlerFunc) HandleWarningHeaderWithContext(_ context.Context, code int, _, text string) {
	f(code, text)
}

func toUnstructured(t *testing.T, obj client.Object) *unstructured.Unstructured {
	t.Helper()
	gvk, err := client.GVKFor(obj)
	if err != nil {
		t.Fatal(err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	return u
}
