package client_test

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubekit/kubekit/client"
)

// cmNames lists the names of the ConfigMaps in ns, sorted; one marked for
// deletion has its finalizers in parentheses.
func cmNames(t *testing.T, c *client.Client, ns string) []string {
	t.Helper()
	items, err := client.Collect[*corev1.ConfigMap](t.Context(), c.Kubernetes().CoreV1().ConfigMaps(ns).List)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, cm := range items {
		switch {
		case cm.Name == "kube-root-ca.crt":
		case cm.DeletionTimestamp != nil:
			names = append(names, cm.Name+"("+strings.Join(cm.Finalizers, " ")+")")
		default:
			names = append(names, cm.Name)
		}
	}
	slices.Sort(names)
	return names
}

// TestDeleteAllOf deletes collections through the real API server: by label
// selector (typed), by field selector (unstructured, namespace from
// InNamespace), dry run, and rejects a named object and bad selectors.
func TestDeleteAllOf(t *testing.T) {
	c := newClient(t)
	defer c.Close()
	ctx := t.Context()
	ns := writeNamespace(t, c, "delete-all-of")
	for _, cm := range []struct{ name, app, tier string }{
		{"web-a", "web", "a"}, {"web-b", "web", "b"}, {"db-a", "db", "a"}, {"db-b", "db", "b"}, {"other", "other", ""},
	} {
		obj := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cm.name, Labels: map[string]string{"app": cm.app, "tier": cm.tier}}}
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}

	// A dry run deletes nothing.
	if err := c.DeleteAllOf(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns}}, client.LabelSelector("app=web"), client.DryRun(true)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cmNames(t, c, ns), ","); got != "db-a,db-b,other,web-a,web-b" {
		t.Fatalf("after a dry run: %s", got)
	}

	// Typed, by label selector, Foreground: the test control plane has no
	// garbage collector, so the objects stay with the finalizer, which shows
	// the policy reached the server. obj is left as it was.
	typed := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns}}
	if err := c.DeleteAllOf(ctx, typed, client.LabelSelector("app=web"), client.PropagationPolicy(metav1.DeletePropagationForeground), client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cmNames(t, c, ns), ","); got != "db-a,db-b,other,web-a(foregroundDeletion),web-b(foregroundDeletion)" {
		t.Fatalf("after DeleteAllOf(app=web, Foreground): %s", got)
	}
	if typed.Name != "" || typed.Namespace != ns || typed.Kind != "" {
		t.Fatalf("DeleteAllOf modified obj: %+v", typed.ObjectMeta)
	}

	// Unstructured, namespace from InNamespace, label and field selectors
	// together; obj's namespace stays empty.
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	if err := c.DeleteAllOf(ctx, u, client.InNamespace(ns), client.LabelSelector("app=db"), client.FieldSelector("metadata.name=db-b")); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cmNames(t, c, ns), ","); got != "db-a,other,web-a(foregroundDeletion),web-b(foregroundDeletion)" {
		t.Fatalf("after DeleteAllOf(app=db, metadata.name=db-b): %s", got)
	}
	if u.GetNamespace() != "" {
		t.Fatalf("DeleteAllOf set obj's namespace to %q", u.GetNamespace())
	}

	// Without a selector: every ConfigMap of the namespace, the ones waiting
	// for a foreground deletion included (Background drops that finalizer).
	if err := c.DeleteAllOf(ctx, &corev1.ConfigMap{}, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if got := cmNames(t, c, ns); len(got) != 0 {
		t.Fatalf("after DeleteAllOf without a selector: %v", got)
	}

	// Bad input, before any request.
	for _, tt := range []struct {
		name string
		obj  client.Object
		opts []client.DeleteAllOfOption
		want []string
	}{
		{"named object", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-a"}}, nil,
			[]string{`client: DeleteAllOf: the object is named "db-a"`, "use Delete for one object"}},
		{"bad selectors", &corev1.ConfigMap{}, []client.DeleteAllOfOption{client.LabelSelector("a in (b"), client.FieldSelector("metadata.name"), client.GracePeriodSeconds(-1)},
			[]string{`client: LabelSelector("a in (b")`, `client: FieldSelector("metadata.name")`, "client: GracePeriodSeconds(-1): must be >= 0"}},
		{"no kind", &unstructured.Unstructured{}, nil, []string{"no apiVersion or kind"}},
	} {
		err := c.DeleteAllOf(ctx, tt.obj, tt.opts...)
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: err = %v, want it to mention %q", tt.name, err, w)
			}
		}
	}
	if err := c.Get(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-a"}}); !apierrors.IsNotFound(err) {
		t.Fatalf("db-a: %v, want NotFound (deleted above)", err)
	}
}

// TestDeleteLeavesObject: Delete resolves a missing namespace without
// writing it into obj, as its doc says.
func TestDeleteLeavesObject(t *testing.T) {
	c := newClient(t)
	defer c.Close()
	ctx := t.Context()
	ns := writeNamespace(t, c, "delete-leaves-object")
	if err := c.Create(ctx, unstructuredCM(ns, "x", nil)); err != nil {
		t.Fatal(err)
	}
	obj := unstructuredCM("", "x", nil)
	before := obj.DeepCopy()
	if err := c.Delete(ctx, obj, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if obj.GetNamespace() != "" || !equalObjects(before, obj) {
		t.Fatalf("Delete modified obj: %v, was %v", obj.Object, before.Object)
	}
	if err := c.Get(ctx, unstructuredCM(ns, "x", nil)); !apierrors.IsNotFound(err) {
		t.Fatalf("after Delete: %v, want NotFound", err)
	}
}

func equalObjects(a, b *unstructured.Unstructured) bool {
	x, _ := a.MarshalJSON()
	y, _ := b.MarshalJSON()
	return string(x) == string(y)
}
