package client_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/kubekit/kubekit/client"
)

func eventsFor(t *testing.T, c *client.Client, ns, name string) []eventsv1.Event {
	t.Helper()
	l, err := c.Kubernetes().EventsV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "regarding.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// TestEventRecorderWritesAndShutdownFlushes records events and reads them
// back from the API server right after Shutdown: nothing is still in
// flight, the repeats became a series, and no goroutine is left.
func TestEventRecorderWritesAndShutdownFlushes(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c := newClient(t)
	defer c.Close()
	cm, err := c.Kubernetes().CoreV1().ConfigMaps("default").Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "evented"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	target := &unstructured.Unstructured{}
	target.SetAPIVersion("v1")
	target.SetKind("ConfigMap")
	target.SetNamespace("default")
	target.SetName("evented-copy")
	target.SetUID("00000000-0000-0000-0000-000000000001")

	rec, err := c.StartEventRecorder(t.Context(), "kubekit.test/mirror", client.WithEventInstance("replica-a"))
	if err != nil {
		t.Fatal(err)
	}
	rec.Eventf(cm, target, corev1.EventTypeNormal, "Mirrored", "Create", "mirrored to %s", target.GetName())
	for range 3 {
		rec.Eventf(cm, nil, corev1.EventTypeWarning, "Slow", "Reconcile", "took %ds", 5)
	}
	// Bad events are dropped and logged, never written or panicking.
	rec.Eventf(nil, nil, corev1.EventTypeNormal, "X", "Y", "nil regarding")
	rec.Eventf(cm, nil, "Info", "X", "Y", "bad type")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := rec.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	evs := eventsFor(t, c, "default", "evented")
	byReason := map[string]eventsv1.Event{}
	for _, e := range evs {
		byReason[e.Reason] = e
	}
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2 (Mirrored, and Slow as a series): %+v", len(evs), evs)
	}
	m := byReason["Mirrored"]
	if m.Note != "mirrored to evented-copy" || m.Type != corev1.EventTypeNormal || m.Action != "Create" ||
		m.ReportingController != "kubekit.test/mirror" || m.ReportingInstance != "replica-a" ||
		m.Regarding.Kind != "ConfigMap" || m.Regarding.UID != cm.UID || m.Related == nil || m.Related.Name != "evented-copy" {
		t.Fatalf("Mirrored event = %+v", m)
	}
	s := byReason["Slow"]
	if s.Type != corev1.EventTypeWarning || s.Note != "took 5s" || s.Series == nil || s.Series.Count != 3 {
		t.Fatalf("Slow event = %+v (series %+v), want a series of 3", s, s.Series)
	}

	// After Shutdown, events are refused (logged), and Shutdown again is a no-op.
	rec.Eventf(cm, nil, corev1.EventTypeNormal, "Late", "Reconcile", "after shutdown")
	if err := rec.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(eventsFor(t, c, "default", "evented")); n != 2 {
		t.Fatalf("an event recorded after Shutdown was written (%d events)", n)
	}
}

// TestEventRecorderShutdownBoundedByCtx: with the API server gone, Shutdown
// returns when its ctx ends and says how many events were lost.
func TestEventRecorderShutdownBoundedByCtx(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c, err := client.New(client.WithRESTConfig(&rest.Config{Host: "https://127.0.0.1:1"}), client.WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec, err := c.StartEventRecorder(t.Context(), "kubekit.test/x",
		client.WithEventRetry(wait.Backoff{Duration: 50 * time.Millisecond, Factor: 1, Steps: 1000}))
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "default"}}
	rec.Eventf(cm, nil, corev1.EventTypeNormal, "A", "B", "one")
	rec.Eventf(cm, nil, corev1.EventTypeNormal, "C", "D", "two")
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = rec.Shutdown(ctx)
	if err == nil || !strings.Contains(err.Error(), "2 events not written") {
		t.Fatalf("Shutdown = %v, want 2 events not written", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Shutdown took %s with a 500ms deadline", d)
	}
}

func TestEventRecorderBadOptions(t *testing.T) {
	c := newClient(t)
	defer c.Close()
	_, err := c.StartEventRecorder(t.Context(), "", client.WithEventQueueSize(0), client.WithEventScheme(nil))
	for _, want := range []string{"controller name is empty", "WithEventQueueSize(0)", "WithEventScheme(nil)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("StartEventRecorder = %v, want it to name %q", err, want)
		}
	}
}
