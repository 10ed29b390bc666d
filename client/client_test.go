package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/testenv"
)

func newClient(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(append([]client.Option{client.WithKubeconfig(env.KubeconfigPath())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestServerVersion(t *testing.T) {
	c := newClient(t)
	v, err := c.ServerVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != testenv.KubernetesVersion || v.Major != "1" || v.Minor != "37" {
		t.Fatalf("version = %+v, want %s", v, testenv.KubernetesVersion)
	}
	if c.Namespace() != "default" || !strings.Contains(c.Source(), env.KubeconfigPath()) {
		t.Fatalf("namespace %q source %q", c.Namespace(), c.Source())
	}
}

func TestListNamespaces(t *testing.T) {
	c := newClient(t)
	list, err := c.Kubernetes().CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, ns := range list.Items {
		names[ns.Name] = true
	}
	for _, want := range []string{"default", "kube-system", "kube-public"} {
		if !names[want] {
			t.Errorf("namespace %s missing from %v", want, names)
		}
	}
}

// TestConfigMapCRUD creates, reads and deletes a ConfigMap through each of
// the three clients, each time checking the result with another one.
func TestConfigMapCRUD(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	cms := c.Kubernetes().CoreV1().ConfigMaps("default")
	dyn := c.Dynamic().Resource(corev1.SchemeGroupVersion.WithResource("configmaps")).Namespace("default")
	rc, err := c.RESTClientFor(corev1.SchemeGroupVersion)
	if err != nil {
		t.Fatal(err)
	}

	// Typed create, REST read.
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "typed"}, Data: map[string]string{"via": "typed"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got corev1.ConfigMap
	if err := rc.Get().Namespace("default").Resource("configmaps").Name("typed").Do(ctx).Into(&got); err != nil {
		t.Fatalf("REST get: %v", err)
	}
	if got.Data["via"] != "typed" {
		t.Fatalf("REST get data = %v", got.Data)
	}

	// Dynamic create, typed read.
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "dynamic"}, "data": map[string]any{"via": "dynamic"},
	}}
	if _, err := dyn.Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if cm, err := cms.Get(ctx, "dynamic", metav1.GetOptions{}); err != nil || cm.Data["via"] != "dynamic" {
		t.Fatalf("typed get of dynamic object: %v %v", cm, err)
	}

	// REST create, dynamic read.
	rcm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "rest"}, Data: map[string]string{"via": "rest"}}
	if err := rc.Post().Namespace("default").Resource("configmaps").Body(rcm).Do(ctx).Error(); err != nil {
		t.Fatalf("REST create: %v", err)
	}
	ru, err := dyn.Get(ctx, "rest", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := unstructured.NestedString(ru.Object, "data", "via"); v != "rest" {
		t.Fatalf("dynamic get data = %v", ru.Object["data"])
	}

	// Delete through each client; the others see NotFound.
	if err := cms.Delete(ctx, "dynamic", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := dyn.Delete(ctx, "rest", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := rc.Delete().Namespace("default").Resource("configmaps").Name("typed").Do(ctx).Error(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"typed", "dynamic", "rest"} {
		if _, err := cms.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("get %s after delete: %v, want NotFound", name, err)
		}
	}
	err = rc.Get().Namespace("default").Resource("configmaps").Name("typed").Do(ctx).Error()
	if !apierrors.IsNotFound(err) {
		t.Errorf("REST get after delete: %v, want NotFound", err)
	}
}

func TestRESTMapperLearnsNewCRD(t *testing.T) {
	c := newClient(t)
	gk := schema.GroupKind{Group: "mapper.kubekit.dev", Kind: "Gadget"}
	// Warm the cache, then ask for a kind that does not exist yet.
	if _, err := c.RESTMapper().RESTMapping(schema.GroupKind{Group: "apps", Kind: "Deployment"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RESTMapper().RESTMapping(gk); !meta.IsNoMatchError(err) {
		t.Fatalf("before the CRD: err = %v, want a no-match error", err)
	}
	if err := env.InstallCRDs(t.Context(), gadgetCRD()); err != nil {
		t.Fatal(err)
	}
	m, err := c.RESTMapper().RESTMapping(gk)
	if err != nil {
		t.Fatalf("after the CRD: %v", err)
	}
	if m.Resource.Resource != "gadgets" || m.Scope.Name() != meta.RESTScopeNameRoot {
		t.Fatalf("mapping = %+v", m)
	}
}

func TestServerVersionHonoursCancel(t *testing.T) {
	c := newClient(t, client.WithDialTimeout(time.Second))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := c.ServerVersion(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := c.ServerVersion(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func gadgetCRD() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "gadgets.mapper.kubekit.dev"},
		"spec": map[string]any{
			"group": "mapper.kubekit.dev", "scope": "Cluster",
			"names": map[string]any{"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
}

func TestCloseEndsConnectionGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c := newClient(t)
	if _, err := c.ServerVersion(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Kubernetes().CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Close()
}
