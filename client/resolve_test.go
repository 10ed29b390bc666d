package client_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/kubekit/kubekit/client"
)

func TestMappingResolution(t *testing.T) {
	c := newClient(t)
	defer c.Close()
	ctx := t.Context()
	m, err := c.MappingFor(ctx, &appsv1.Deployment{})
	if err != nil || m.Resource != appsv1.SchemeGroupVersion.WithResource("deployments") || m.Scope.Name() != meta.RESTScopeNameNamespace {
		t.Fatalf("MappingFor(Deployment) = %+v, %v", m, err)
	}
	for _, name := range []string{"deployments", "deployment"} {
		m, err = c.MappingForResource(ctx, schema.GroupVersionResource{Group: "apps", Resource: name})
		if err != nil || m.GroupVersionKind != appsv1.SchemeGroupVersion.WithKind("Deployment") {
			t.Fatalf("MappingForResource(%s) = %+v, %v", name, m, err)
		}
	}
	if m, err = c.MappingForResource(ctx, corev1.SchemeGroupVersion.WithResource("namespaces")); err != nil || m.Scope.Name() != meta.RESTScopeNameRoot {
		t.Fatalf("namespaces: %+v, %v", m, err)
	}
	_, err = c.MappingForKind(ctx, schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Nope"})
	if !meta.IsNoMatchError(err) || !strings.Contains(err.Error(), "is not served by the API server") {
		t.Fatalf("unknown kind: %v", err)
	}
	_, err = c.MappingForResource(ctx, schema.GroupVersionResource{Resource: "nopes"})
	if !meta.IsNoMatchError(err) || !strings.Contains(err.Error(), "resource nopes is not served") {
		t.Fatalf("unknown resource: %v", err)
	}
	for _, bad := range []error{
		func() error { _, err := c.MappingForResource(ctx, schema.GroupVersionResource{}); return err }(),
		func() error { _, err := c.MappingForKind(ctx, schema.GroupVersionKind{Kind: "X"}); return err }(),
		func() error { _, err := c.StreamingRESTClientFor(schema.GroupVersion{Group: "apps"}); return err }(),
	} {
		if bad == nil || !strings.Contains(bad.Error(), "e.g.") {
			t.Errorf("bad input error without a fix: %v", bad)
		}
	}
	rc, err := c.StreamingRESTClientFor(corev1.SchemeGroupVersion)
	if err != nil {
		t.Fatal(err)
	}
	var ns corev1.Namespace
	if err := rc.Get().Resource("namespaces").Name("default").Do(ctx).Into(&ns); err != nil || ns.Name != "default" {
		t.Fatalf("streaming REST client: %v", err)
	}
}

// A server that refuses connections is a connection error, not "not served".
func TestMappingConnectionRefused(t *testing.T) {
	c, err := client.New(client.WithRESTConfig(&rest.Config{Host: "https://127.0.0.1:1"}), client.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = c.MappingFor(ctx, &corev1.ConfigMap{})
	if err == nil || meta.IsNoMatchError(err) || !strings.Contains(err.Error(), "cannot ask the API server at https://127.0.0.1:1") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("MappingFor against a closed port = %v", err)
	}
}
