package informer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/informer"
)

// TestForMetadata: a metadata-only informer of Pods against the real API
// server caches typed *metav1.PartialObjectMetadata with labels and owners
// but no spec, follows changes and deletions, and drops managedFields by
// default; ListMetadata streams the same.
func TestForMetadata(t *testing.T) {
	c := newClient(t)
	verifyNoLeaks(t, c)
	ns := newNamespace(t, c)
	p := pod(ns, "web-0", map[string]string{"app": "web"})
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-abc", UID: "0d6c8d1e-5f0a-4b7e-9c3b-2f1e4a6b8c9d"}}
	createPod(t, c, p)
	createPod(t, c, pod(ns, "db-0", map[string]string{"app": "db"}))

	f := newFactory(t, c, informer.WithNamespaces(ns))
	pods, err := informer.ForMetadata(t.Context(), f, corev1.SchemeGroupVersion.WithResource("pods"))
	if err != nil {
		t.Fatal(err)
	}
	var events recorder
	if _, err := pods.AddHandler(informer.Handler[*metav1.PartialObjectMetadata]{
		OnAdd:    func(m *metav1.PartialObjectMetadata, _ bool) { events.add("ADD %s", m.Name) },
		OnDelete: func(m *metav1.PartialObjectMetadata) { events.add("DELETE %s", m.Name) },
	}); err != nil {
		t.Fatal(err)
	}
	f.Start(t.Context())
	waitSynced(t, f)
	m, err := pods.Lister().Get(ns, "web-0")
	if err != nil {
		t.Fatal(err)
	}
	if m.Labels["app"] != "web" || len(m.OwnerReferences) != 1 || m.OwnerReferences[0].Name != "web-abc" || m.UID == "" {
		t.Fatalf("cached metadata = %+v", m.ObjectMeta)
	}
	if len(m.ManagedFields) != 0 {
		t.Fatalf("ForMetadata kept managedFields by default: %v", m.ManagedFields)
	}
	web, err := pods.Lister().List(labels.SelectorFromSet(labels.Set{"app": "web"}))
	if err != nil || len(web) != 1 {
		t.Fatalf("List(app=web) = %v, %v", web, err)
	}
	if _, err := pods.Lister().Get(ns, "nope"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("Get(nope) = %v, want NotFound", err)
	}
	if err := c.Kubernetes().CoreV1().Pods(ns).Delete(t.Context(), "db-0", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(strings.Join(events.get(), ","), "DELETE db-0") {
		if time.Now().After(deadline) {
			t.Fatalf("no DELETE for db-0; events %v", events.get())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// ListMetadata streams the same objects.
	var listed []string
	for m, err := range client.ListMetadata(t.Context(), c, corev1.SchemeGroupVersion.WithResource("pods"), ns, client.PageSize(1)) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, m.Name+"="+m.Labels["app"])
	}
	if strings.Join(listed, ",") != "web-0=web" {
		t.Fatalf("ListMetadata = %v", listed)
	}

	// Bad input is named.
	if _, err := informer.ForMetadata(t.Context(), f, corev1.SchemeGroupVersion.WithResource("nopes")); err == nil || !strings.Contains(err.Error(), "ForMetadata(nopes/v1)") {
		t.Fatalf("ForMetadata(nopes) = %v", err)
	}
	for _, err := range client.ListMetadata(context.Background(), c, metav1.SchemeGroupVersion.WithResource(""), "") {
		if err == nil || !strings.Contains(err.Error(), "name the version and the plural resource") {
			t.Fatalf("ListMetadata(empty) = %v", err)
		}
	}
}
