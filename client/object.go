package client

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// Object is anything the write verbs accept: a typed API struct registered in
// client-go's scheme (*corev1.ConfigMap, *appsv1.Deployment...) or an
// *unstructured.Unstructured with apiVersion and kind set (any kind,
// custom resources included).
type Object interface {
	metav1.Object
	runtime.Object
}

// target is where an object lives on the server.
type target struct {
	gvk        schema.GroupVersionKind
	mapping    *meta.RESTMapping
	namespace  string
	name       string
	namespaced bool
}

// String names the object for messages: "configmaps default/x".
func (t target) String() string {
	r := t.mapping.Resource.Resource
	if t.mapping.Resource.Group != "" {
		r += "." + t.mapping.Resource.Group
	}
	switch {
	case t.name == "" && t.namespace != "":
		return r + " in namespace " + t.namespace
	case t.namespace != "":
		return r + " " + t.namespace + "/" + t.name
	}
	return r + " " + t.name
}

// GVKFor returns the group, version and kind of obj: from apiVersion and kind
// for unstructured objects, from client-go's scheme for typed ones.
func GVKFor(obj runtime.Object) (schema.GroupVersionKind, error) {
	if obj == nil || reflect.ValueOf(obj).IsNil() {
		return schema.GroupVersionKind{}, fmt.Errorf("client: nil object")
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		gvk := u.GroupVersionKind()
		if gvk.Kind == "" || gvk.Version == "" {
			return gvk, fmt.Errorf("client: unstructured object %q has no apiVersion or kind; set both, e.g. apiVersion: v1, kind: ConfigMap", u.GetName())
		}
		return gvk, nil
	}
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return schema.GroupVersionKind{}, fmt.Errorf("client: %T is not registered in client-go's scheme; use *unstructured.Unstructured for other kinds: %w", obj, err)
	}
	return gvks[0], nil
}

// resolve maps obj to its resource and namespace (a namespaced object
// without one goes to InNamespace, else the client's namespace, else
// "default") without modifying obj.
func (c *Client) resolve(ctx context.Context, obj Object, o *writeOptions, needName bool) (target, error) {
	gvk, err := GVKFor(obj)
	if err != nil {
		return target{}, err
	}
	m, err := c.MappingForKind(ctx, gvk)
	if err != nil {
		return target{}, err
	}
	t := target{gvk: gvk, mapping: m, name: obj.GetName(), namespaced: m.Scope.Name() == meta.RESTScopeNameNamespace}
	if needName && t.name == "" {
		return t, fmt.Errorf("client: %s object has no metadata.name", gvk.Kind)
	}
	if t.namespaced {
		t.namespace = obj.GetNamespace()
		if t.namespace == "" {
			t.namespace = o.namespace
		}
		if t.namespace == "" {
			t.namespace = c.Namespace()
		}
		if t.namespace == "" {
			t.namespace = metav1.NamespaceDefault
		}
	}
	return t, nil
}

// locate is resolve for the verbs that send obj and fill it with the
// answer: it also sets obj's namespace to the target's ("" for
// cluster-scoped kinds).
func (c *Client) locate(ctx context.Context, obj Object, o *writeOptions, needName bool) (target, error) {
	t, err := c.resolve(ctx, obj, o, needName)
	if err == nil {
		obj.SetNamespace(t.namespace)
	}
	return t, err
}

// request starts a request for t on the shared, rate-limited REST client,
// asking for JSON whatever the client's default content type.
func (c *Client) request(verb string, t target, withName bool) *rest.Request {
	gv := t.mapping.Resource.GroupVersion()
	prefix := []string{"/apis", gv.Group, gv.Version}
	if gv.Group == "" {
		prefix = []string{"/api", gv.Version}
	}
	r := c.kube.CoreV1().RESTClient().Verb(verb).AbsPath(prefix...).
		NamespaceIfScoped(t.namespace, t.namespaced).Resource(t.mapping.Resource.Resource).
		SetHeader("Accept", "application/json")
	if withName {
		r = r.Name(t.name)
	}
	return r
}

// encode marshals obj as JSON with apiVersion and kind set.
func encode(obj Object, gvk schema.GroupVersionKind, clearManaged bool) ([]byte, error) {
	cp, ok := obj.DeepCopyObject().(Object)
	if !ok {
		return nil, fmt.Errorf("client: %T.DeepCopyObject does not return an Object", obj)
	}
	cp.GetObjectKind().SetGroupVersionKind(gvk)
	if clearManaged {
		cp.SetManagedFields(nil)
	}
	b, err := json.Marshal(cp)
	if err != nil {
		return nil, fmt.Errorf("client: encode %s %q: %w", gvk.Kind, obj.GetName(), err)
	}
	return b, nil
}

// decodeInto replaces obj's content with the JSON object in body.
func decodeInto(obj Object, body []byte) error {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		var n unstructured.Unstructured
		if err := n.UnmarshalJSON(body); err != nil {
			return fmt.Errorf("client: decode the server's answer: %w", err)
		}
		u.Object = n.Object
		return nil
	}
	v := reflect.ValueOf(obj).Elem()
	v.Set(reflect.Zero(v.Type()))
	if err := json.Unmarshal(body, obj); err != nil {
		return fmt.Errorf("client: decode the server's answer into %T: %w", obj, err)
	}
	return nil
}

// do sends r and returns the body and HTTP status code; API errors keep their
// apierrors type under the %w wrap.
func do(ctx context.Context, r *rest.Request, what string, t target) ([]byte, int, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("client: %s %s: %w", what, t, err)
	}
	var code int
	res := r.Do(ctx).StatusCode(&code)
	// Error, unlike Raw, decodes the server's Status (reason, details).
	if err := res.Error(); err != nil {
		return nil, code, fmt.Errorf("client: %s %s: %w", what, t, err)
	}
	body, err := res.Raw()
	if err != nil {
		return nil, code, fmt.Errorf("client: %s %s: %w", what, t, err)
	}
	return body, code, nil
}

// Get reads the object named by obj's metadata (name and, for namespaced
// kinds, namespace, defaulting like the writes) and fills obj with it.
func (c *Client) Get(ctx context.Context, obj Object, opts ...GetOption) error {
	o, err := newWriteOptions(opts)
	if err != nil {
		return err
	}
	t, err := c.locate(ctx, obj, &o, true)
	if err != nil {
		return err
	}
	body, _, err := do(ctx, c.request("GET", t, true), "get", t)
	if err != nil {
		return err
	}
	return decodeInto(obj, body)
}

// Create creates obj and fills it with the server's answer (uid,
// resourceVersion, defaults...). An existing object is an AlreadyExists error.
func (c *Client) Create(ctx context.Context, obj Object, opts ...CreateOption) error {
	o, err := newWriteOptions(opts)
	if err != nil {
		return err
	}
	return c.write(ctx, "create", "POST", "", obj, &o, false)
}

// Update replaces obj on the server and fills it with the server's answer. A
// resourceVersion in obj makes it conditional (409 Conflict if the object
// changed since).
func (c *Client) Update(ctx context.Context, obj Object, opts ...UpdateOption) error {
	o, err := newWriteOptions(opts)
	if err != nil {
		return err
	}
	return c.write(ctx, "update", "PUT", "", obj, &o, true)
}

// write sends obj (to its subresource sub, if not "") and fills obj with
// the answer.
func (c *Client) write(ctx context.Context, verb, method, sub string, obj Object, o *writeOptions, withName bool) error {
	t, err := c.locate(ctx, obj, o, true)
	if err != nil {
		return err
	}
	data, err := encode(obj, t.gvk, false)
	if err != nil {
		return err
	}
	r := o.params(c.request(method, t, withName).SubResource(subresources(sub)...), false).SetHeader("Content-Type", "application/json").Body(data)
	body, _, err := do(ctx, r, verb, t)
	if err != nil {
		return err
	}
	return decodeInto(obj, body)
}

// Patch is a patch document and its type; build one with [JSONPatch],
// [MergePatch] or [StrategicMergePatch].
type Patch struct {
	Type types.PatchType
	Data []byte
}

// JSONPatch is an RFC 6902 JSON patch: [{"op":"replace","path":"/data/a","value":"b"}].
func JSONPatch(data []byte) Patch { return Patch{Type: types.JSONPatchType, Data: data} }

// MergePatch is an RFC 7386 JSON merge patch: {"data":{"a":"b"}}; null deletes.
func MergePatch(data []byte) Patch { return Patch{Type: types.MergePatchType, Data: data} }

// StrategicMergePatch is Kubernetes' strategic merge patch, which merges lists
// by key (containers by name...). Built-in kinds only: custom resources answer
// 415 Unsupported Media Type.
func StrategicMergePatch(data []byte) Patch {
	return Patch{Type: types.StrategicMergePatchType, Data: data}
}

// Patch patches the object named by obj's metadata with p and fills obj with
// the result. Only obj's kind, name and namespace are used.
func (c *Client) Patch(ctx context.Context, obj Object, p Patch, opts ...PatchOption) error {
	o, err := newWriteOptions(opts)
	if err != nil {
		return err
	}
	return c.patch(ctx, "Patch", "patch", "", obj, p, &o)
}

// patch sends p to obj (or its subresource sub) and fills obj with the
// result.
func (c *Client) patch(ctx context.Context, fn, what, sub string, obj Object, p Patch, o *writeOptions) error {
	if err := checkPatch(fn, p); err != nil {
		return err
	}
	t, err := c.locate(ctx, obj, o, true)
	if err != nil {
		return err
	}
	r := o.params(c.request("PATCH", t, true).SubResource(subresources(sub)...), false).SetHeader("Content-Type", string(p.Type)).Body(p.Data)
	body, _, err := do(ctx, r, what, t)
	if err != nil {
		return err
	}
	return decodeInto(obj, body)
}

// subresources is sub as rest.Request.SubResource takes it: none for "".
func subresources(sub string) []string {
	if sub == "" {
		return nil
	}
	return []string{sub}
}

// Delete deletes the object named by obj's metadata (a namespaced object
// without a namespace is looked for in [InNamespace], else the client's
// namespace). A missing object is a NotFound error (see [IgnoreNotFound]).
// obj is not modified.
func (c *Client) Delete(ctx context.Context, obj Object, opts ...DeleteOption) error {
	o, err := newWriteOptions(opts)
	if err != nil {
		return err
	}
	t, err := c.resolve(ctx, obj, &o, true)
	if err != nil {
		return err
	}
	_, err = c.delete(ctx, t, &o)
	return err
}

func (c *Client) delete(ctx context.Context, t target, o *writeOptions) ([]byte, error) {
	data, err := json.Marshal(o.deleteOptions())
	if err != nil {
		return nil, err
	}
	body, _, err := do(ctx, c.request("DELETE", t, true).SetHeader("Content-Type", "application/json").Body(data), "delete", t)
	return body, err
}

// DeleteAllOf deletes, in one request (the API's deletecollection, what
// kubectl delete -l does server-side), every object of obj's kind in obj's
// namespace that matches [LabelSelector] and [FieldSelector]; without a
// selector, every object of that kind in the namespace. obj gives only the
// kind (typed, or unstructured with apiVersion and kind) and the namespace
// (defaulting like the other verbs: [InNamespace], else the client's
// namespace; ignored for cluster-scoped kinds); it must not have a name, so
// that a Delete meant for one object cannot delete a collection. obj is not
// modified. Dependents are deleted in the background unless
// [PropagationPolicy] says otherwise; [GracePeriodSeconds] and [DryRun]
// apply. It returns once the server accepted the deletion: objects with
// finalizers may linger ([Client.Wait] with [ForDeleted] waits for them).
func (c *Client) DeleteAllOf(ctx context.Context, obj Object, opts ...DeleteAllOfOption) error {
	o, err := newWriteOptions(opts)
	if err != nil {
		return err
	}
	t, err := c.resolve(ctx, obj, &o, false)
	if err != nil {
		return err
	}
	if t.name != "" {
		return fmt.Errorf("client: DeleteAllOf: the object is named %q; leave metadata.name empty and select with LabelSelector or FieldSelector, or use Delete for one object", t.name)
	}
	data, err := json.Marshal(o.deleteOptions())
	if err != nil {
		return err
	}
	r := c.request("DELETE", t, false).SetHeader("Content-Type", "application/json").Body(data)
	if o.labelSelector != "" {
		r = r.Param("labelSelector", o.labelSelector)
	}
	if o.fieldSelector != "" {
		r = r.Param("fieldSelector", o.fieldSelector)
	}
	_, _, err = do(ctx, r, "delete collection", t)
	return err
}
