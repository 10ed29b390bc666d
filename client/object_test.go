package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"go.uber.org/goleak"

	"github.com/kubekit/kubekit/client"
)

// writeNamespace creates a fresh namespace for one test.
func writeNamespace(t *testing.T, c *client.Client, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(t.Context(), ns); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

func deployment(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
			},
		},
	}
}

func unstructuredCM(ns, name string, data map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name},
		"data":     data,
	}}
	if ns != "" {
		u.SetNamespace(ns)
	}
	return u
}

func TestWriteTypedVerbs(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	ns := writeNamespace(t, c, "write-typed")

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"}, Data: map[string]string{"a": "1"}}
	if err := c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if cm.UID == "" || cm.ResourceVersion == "" || cm.Kind != "ConfigMap" {
		t.Fatalf("Create did not fill the object: %+v", cm)
	}
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"}}); !apierrors.IsAlreadyExists(err) || client.IgnoreAlreadyExists(err) != nil {
		t.Fatalf("second Create: %v, want AlreadyExists", err)
	}

	got := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"}, Data: map[string]string{"stale": "x"}}
	if err := c.Get(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got.Data["a"] != "1" || got.Data["stale"] != "" || got.UID != cm.UID {
		t.Fatalf("Get = %+v, want the server's object only", got.Data)
	}

	stale := got.DeepCopy()
	got.Data["b"] = "2"
	if err := c.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got.ResourceVersion == stale.ResourceVersion {
		t.Fatal("Update did not return the new resourceVersion")
	}
	stale.Data["c"] = "3"
	if err := c.Update(ctx, stale); !apierrors.IsConflict(err) {
		t.Fatalf("Update with a stale resourceVersion: %v, want Conflict", err)
	}

	patches := []struct {
		name  string
		patch client.Patch
		key   string
		value string
	}{
		{"json", client.JSONPatch([]byte(`[{"op":"add","path":"/data/j","value":"json"}]`)), "j", "json"},
		{"merge", client.MergePatch([]byte(`{"data":{"m":"merge"}}`)), "m", "merge"},
		{"strategic", client.StrategicMergePatch([]byte(`{"data":{"s":"strategic"}}`)), "s", "strategic"},
	}
	for _, p := range patches {
		t.Run("patch "+p.name, func(t *testing.T) {
			target := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"}}
			if err := c.Patch(t.Context(), target, p.patch); err != nil {
				t.Fatal(err)
			}
			if target.Data[p.key] != p.value || target.Data["a"] != "1" {
				t.Fatalf("after %s patch: %v", p.name, target.Data)
			}
		})
	}

	dry := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dry"}}
	if err := c.Create(ctx, dry, client.DryRun(true)); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dry"}}); !apierrors.IsNotFound(err) {
		t.Fatalf("dry-run Create left an object behind: %v", err)
	}

	if err := c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"}}, client.DryRun(true)); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"}}); err != nil {
		t.Fatalf("dry-run Delete deleted: %v", err)
	}
	if err := c.Delete(ctx, cm, client.GracePeriodSeconds(0), client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatal(err)
	}
	err := c.Delete(ctx, cm)
	if !apierrors.IsNotFound(err) || client.IgnoreNotFound(err) != nil {
		t.Fatalf("second Delete: %v, want NotFound", err)
	}
	if !strings.Contains(err.Error(), "configmaps "+ns+"/cm") {
		t.Fatalf("error %q does not name the object", err)
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Code != 404 {
		t.Fatalf("errors.As(APIStatus) failed on %v", err)
	}
}

func TestWriteApplyOutcomes(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	ns := writeNamespace(t, c, "write-apply")

	tests := []struct {
		name string
		obj  func(replicas int32) client.Object
	}{
		{"typed deployment", func(r int32) client.Object { return deployment(ns, "web", r) }},
		{"unstructured configmap", func(r int32) client.Object {
			return unstructuredCM(ns, "settings", map[string]any{"replicas": fmt.Sprint(r)})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps := []struct {
				replicas int32
				opts     []client.ApplyOption
				want     client.Outcome
				stored   bool
			}{
				{1, []client.ApplyOption{client.DryRun(true)}, client.Created, false},
				{1, nil, client.Created, true},
				{1, nil, client.Unchanged, true},
				{1, []client.ApplyOption{client.DryRun(true)}, client.Unchanged, true},
				{2, []client.ApplyOption{client.DryRun(true)}, client.Configured, true},
				{2, nil, client.Configured, true},
				{2, []client.ApplyOption{client.FieldManager("kubekit")}, client.Unchanged, true},
			}
			lastRV := ""
			for i, s := range steps {
				obj := tt.obj(s.replicas)
				got, err := c.Apply(t.Context(), obj, s.opts...)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got != s.want {
					t.Fatalf("step %d (replicas %d, %d opts): outcome %s, want %s", i, s.replicas, len(s.opts), got, s.want)
				}
				if obj.GetUID() == "" && s.stored {
					t.Fatalf("step %d: Apply did not fill the object", i)
				}
				check := tt.obj(0)
				err = c.Get(t.Context(), check)
				if s.stored != (err == nil) {
					t.Fatalf("step %d: stored=%v but Get: %v", i, s.stored, err)
				}
				if s.stored && len(s.opts) == 0 {
					if s.want == client.Unchanged && check.GetResourceVersion() != lastRV {
						t.Fatalf("step %d: unchanged but resourceVersion moved %s -> %s", i, lastRV, check.GetResourceVersion())
					}
					lastRV = check.GetResourceVersion()
				}
			}
		})
	}

	// Another manager owns a field: conflict unless forced.
	d := deployment(ns, "web", 5)
	if _, err := c.Apply(ctx, d, client.FieldManager("other")); !apierrors.IsConflict(err) {
		t.Fatalf("apply by another manager: %v, want Conflict", err)
	}
	got, err := c.Apply(ctx, d, client.FieldManager("other"), client.ForceOwnership(true))
	if err != nil || got != client.Configured || *d.Spec.Replicas != 5 {
		t.Fatalf("forced apply = %s, %v (replicas %d)", got, err, *d.Spec.Replicas)
	}

	// managedFields in a fetched object do not break a re-apply.
	fetched := deployment(ns, "web", 0)
	if err := c.Get(ctx, fetched); err != nil {
		t.Fatal(err)
	}
	fetched.ResourceVersion = ""
	if len(fetched.ManagedFields) == 0 {
		t.Fatal("no managedFields on the fetched object")
	}
	if _, err := c.Apply(ctx, fetched, client.FieldManager("other")); err != nil {
		t.Fatalf("apply of a fetched object: %v", err)
	}
}

func TestWriteNamespaceDefaultingAndScope(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	ns := writeNamespace(t, c, "write-defaulting")

	// No namespace: the client's namespace (the kubeconfig context's, else "default").
	cm := unstructuredCM("", "write-defaulted", map[string]any{"k": "v"})
	if _, err := c.Apply(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if cm.GetNamespace() != c.Namespace() || c.Namespace() == "" {
		t.Fatalf("namespace = %q, want the client's %q", cm.GetNamespace(), c.Namespace())
	}
	t.Cleanup(func() { _ = c.Delete(context.WithoutCancel(t.Context()), cm) })

	// InNamespace overrides the client's namespace, but not an explicit one.
	in := unstructuredCM("", "in-ns", nil)
	if err := c.Create(ctx, in, client.InNamespace(ns)); err != nil || in.GetNamespace() != ns {
		t.Fatalf("InNamespace: ns %q, %v", in.GetNamespace(), err)
	}
	explicit := unstructuredCM(c.Namespace(), "write-explicit", nil)
	if err := c.Create(ctx, explicit, client.InNamespace(ns)); err != nil || explicit.GetNamespace() != c.Namespace() {
		t.Fatalf("explicit namespace: %q, %v", explicit.GetNamespace(), err)
	}
	t.Cleanup(func() { _ = c.Delete(context.WithoutCancel(t.Context()), explicit) })

	// Cluster-scoped objects ignore a namespace.
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "write-reader", Namespace: "ignored"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}}}}
	got, err := c.Apply(ctx, role)
	if err != nil || got != client.Created || role.Namespace != "" {
		t.Fatalf("cluster-scoped apply: %s, %v, ns %q", got, err, role.Namespace)
	}
	if err := c.Delete(ctx, role); err != nil {
		t.Fatal(err)
	}
}

func writeCRD() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets.write.kubekit.dev"},
		"spec": map[string]any{
			"group": "write.kubekit.dev", "scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
}

func TestWriteCustomResource(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	ns := writeNamespace(t, c, "write-cr")
	if err := env.InstallCRDs(ctx, writeCRD()); err != nil {
		t.Fatal(err)
	}
	w := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "write.kubekit.dev/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w1", "namespace": ns},
		"spec":     map[string]any{"size": int64(3)},
	}}
	for i, want := range []client.Outcome{client.Created, client.Unchanged} {
		got, err := c.Apply(ctx, w.DeepCopy())
		if err != nil || got != want {
			t.Fatalf("apply %d: %s, %v; want %s", i, got, err, want)
		}
	}
	if err := c.Patch(ctx, w, client.MergePatch([]byte(`{"spec":{"size":4}}`))); err != nil {
		t.Fatal(err)
	}
	if size, _, _ := unstructured.NestedInt64(w.Object, "spec", "size"); size != 4 {
		t.Fatalf("size = %d", size)
	}
	if err := c.Patch(ctx, w, client.StrategicMergePatch([]byte(`{"spec":{"size":5}}`))); !apierrors.IsUnsupportedMediaType(err) {
		t.Fatalf("strategic merge on a CR: %v, want UnsupportedMediaType", err)
	}
	if err := c.Delete(ctx, w); err != nil {
		t.Fatal(err)
	}
}

type notRegistered struct {
	metav1.TypeMeta
	metav1.ObjectMeta
}

func (n *notRegistered) DeepCopyObject() runtime.Object { c := *n; return &c }

func TestWriteBadInput(t *testing.T) {
	c := newClient(t)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	cm := func() *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "default"}}
	}
	tests := []struct {
		name string
		call func(ctx context.Context) error
		want string
		is   func(error) bool
	}{
		{"no kind", func(ctx context.Context) error {
			return c.Create(ctx, &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "x"}}})
		}, "no apiVersion or kind", nil},
		{"unknown kind", func(ctx context.Context) error {
			return c.Create(ctx, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "nope.kubekit.dev/v1", "kind": "Nope", "metadata": map[string]any{"name": "x"}}})
		}, "not served", meta.IsNoMatchError},
		{"unregistered type", func(ctx context.Context) error { return c.Create(ctx, &notRegistered{}) }, "not registered", nil},
		{"nil object", func(ctx context.Context) error { return c.Get(ctx, (*corev1.ConfigMap)(nil)) }, "nil object", nil},
		{"no name", func(ctx context.Context) error { return c.Create(ctx, &corev1.ConfigMap{}) }, "no metadata.name", nil},
		// ForceOwnership on Create and DryRun on Get do not compile:
		// testdata/nocompile, TestMisplacedOptionsDoNotCompile.
		{"empty field manager", func(ctx context.Context) error { _, err := c.Apply(ctx, cm(), client.FieldManager("")); return err }, `client: FieldManager(""): must not be empty`, nil},
		{"bad validation", func(ctx context.Context) error { return c.Create(ctx, cm(), client.FieldValidation("Loose")) }, "must be Ignore, Warn or Strict", nil},
		{"bad propagation", func(ctx context.Context) error { return c.Delete(ctx, cm(), client.PropagationPolicy("Sideways")) }, "must be Orphan", nil},
		{"negative grace", func(ctx context.Context) error { return c.Delete(ctx, cm(), client.GracePeriodSeconds(-1)) }, ">= 0", nil},
		{"apply as patch", func(ctx context.Context) error {
			return c.Patch(ctx, cm(), client.Patch{Type: "application/apply-patch+yaml", Data: []byte("{}")})
		}, "use Apply", nil},
		{"empty patch", func(ctx context.Context) error { return c.Patch(ctx, cm(), client.MergePatch(nil)) }, "empty patch", nil},
		{"strict validation", func(ctx context.Context) error {
			u := unstructuredCM("default", "strict", nil)
			u.Object["bogus"] = true
			return c.Create(ctx, u, client.FieldValidation("Strict"), client.DryRun(true))
		}, `unknown field "bogus"`, apierrors.IsBadRequest},
		{"cancelled", func(context.Context) error { return c.Get(cancelled, cm()) }, "context canceled", func(err error) bool { return errors.Is(err, context.Canceled) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if tt.is != nil && !tt.is(err) {
				t.Fatalf("err = %v does not satisfy its predicate", err)
			}
		})
	}
}

func TestWriteLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c, err := client.New(client.WithKubeconfig(env.KubeconfigPath()))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := client.DecodeManifests(t.Context(), strings.NewReader(
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leak-check}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: leak-check-2}\n"), "leak.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ApplyManifests(t.Context(), ms); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteManifests(t.Context(), ms); err != nil {
		t.Fatal(err)
	}
	c.Close()
}
