package client

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"

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

// DefaultFieldManager is the field manager Apply, Create, Update and Patch use
// unless [FieldManager] says otherwise.
const DefaultFieldManager = "kubekit"

// WriteOption configures one call of Get, Create, Update, Patch, Delete, Apply,
// ApplyManifests or DeleteManifests. An option that makes no sense for a verb
// (ForceOwnership on Create, say) is an error naming the option.
type WriteOption interface{ applyWrite(*writeOptions) }

type writeOptions struct {
	fieldManager    string
	force           *bool
	dryRun          bool
	fieldValidation string
	propagation     *metav1.DeletionPropagation
	gracePeriod     *int64
	namespace       string
	establish       *time.Duration
	concurrency     int
	recreate        bool
	set             map[string]bool // option names given, for validation
}

// FieldManager names the field manager recorded in managedFields (default
// [DefaultFieldManager], "kubekit"). Apply, Create, Update, Patch and the
// manifest verbs take it.
type FieldManager string

func (f FieldManager) applyWrite(o *writeOptions) {
	o.fieldManager = string(f)
	o.set["FieldManager"] = true
}

// ForceOwnership makes Apply take over fields other managers own instead of
// failing with a 409 Conflict (kubectl's --force-conflicts). Default false.
type ForceOwnership bool

func (f ForceOwnership) applyWrite(o *writeOptions) {
	v := bool(f)
	o.force = &v
	o.set["ForceOwnership"] = true
}

// DryRun(true) asks the API server to validate and admit the write without
// persisting it (dryRun=All, kubectl's --dry-run=server). Default false.
type DryRun bool

func (d DryRun) applyWrite(o *writeOptions) { o.dryRun = bool(d); o.set["DryRun"] = true }

// FieldValidation sets how the API server treats unknown or duplicate fields
// on writes: "Ignore", "Warn" (the server's default) or "Strict" (kubectl's
// default, an error).
type FieldValidation string

func (f FieldValidation) applyWrite(o *writeOptions) {
	o.fieldValidation = string(f)
	o.set["FieldValidation"] = true
}

// PropagationPolicy sets how Delete and DeleteManifests treat dependents:
// Background (the default, as kubectl's --cascade=background: the object goes
// at once and the garbage collector deletes its dependents), Foreground (the
// object stays, with a foregroundDeletion finalizer, until its blocking
// dependents are gone) or Orphan (dependents are kept). kubekit always sends
// a policy: left to itself the API server orphans the Pods of a Job.
type PropagationPolicy metav1.DeletionPropagation

func (p PropagationPolicy) applyWrite(o *writeOptions) {
	v := metav1.DeletionPropagation(p)
	o.propagation = &v
	o.set["PropagationPolicy"] = true
}

// GracePeriodSeconds sets Delete's grace period in seconds (0 = immediately;
// default: the object's own).
type GracePeriodSeconds int64

func (g GracePeriodSeconds) applyWrite(o *writeOptions) {
	v := int64(g)
	o.gracePeriod = &v
	o.set["GracePeriodSeconds"] = true
}

// InNamespace is the namespace for namespaced objects that have none, in place
// of [Client.Namespace] (kubectl's -n). Objects that name another namespace
// keep theirs.
type InNamespace string

func (n InNamespace) applyWrite(o *writeOptions) {
	o.namespace = string(n)
	o.set["InNamespace"] = true
}

// EstablishTimeout bounds how long ApplyManifests waits for a
// CustomResourceDefinition it applied to become Established before applying
// that CRD's custom resources. Default 30s; it must be positive.
type EstablishTimeout time.Duration

func (e EstablishTimeout) applyWrite(o *writeOptions) {
	v := time.Duration(e)
	o.establish = &v
	o.set["EstablishTimeout"] = true
}

// Concurrency bounds how many objects of one stage (Namespaces, then CRDs,
// then the rest) ApplyManifests applies at once. Default
// [DefaultConcurrency]; 1 applies one at a time. Every request still goes
// through the client's rate limiter ([WithQPS], [WithBurst]), and results
// stay in input order. It must be positive.
type Concurrency int

func (n Concurrency) applyWrite(o *writeOptions) {
	o.concurrency = int(n)
	o.set["Concurrency"] = true
}

// Recreate(true) makes Apply and ApplyManifests delete and re-create an
// object when the server rejects the apply because it changes an immutable
// field (a Job's template, a Service's clusterIP...), as kubectl apply
// --force does: the object is deleted (propagation Background), Apply waits
// until it is gone (bounded by ctx), then applies again; the outcome is
// Configured, as kubectl reports it, and the result says Recreated. If the
// new object cannot be created, the old one is restored and both errors are
// returned. Default false. Not with DryRun.
type Recreate bool

func (r Recreate) applyWrite(o *writeOptions) {
	o.recreate = bool(r)
	o.set["Recreate"] = true
}

// allowedOptions lists the options each verb accepts besides DryRun, which
// every write takes.
func allowedOptions(verb string) []string {
	switch verb {
	case "Get":
		return []string{"InNamespace"}
	case "Create", "Update", "Patch":
		return []string{"FieldManager", "FieldValidation", "InNamespace"}
	case "Apply":
		return []string{"FieldManager", "FieldValidation", "InNamespace", "ForceOwnership", "Recreate"}
	case "ApplyManifests":
		return []string{"FieldManager", "FieldValidation", "InNamespace", "ForceOwnership", "EstablishTimeout", "Concurrency", "Recreate"}
	case "Diff":
		return []string{"FieldManager", "FieldValidation", "InNamespace", "ForceOwnership"}
	case "Delete", "DeleteManifests":
		return []string{"PropagationPolicy", "GracePeriodSeconds", "InNamespace"}
	}
	return nil
}

func newWriteOptions(verb string, opts []WriteOption) (writeOptions, error) {
	o := writeOptions{fieldManager: DefaultFieldManager, set: map[string]bool{}}
	for _, opt := range opts {
		if opt != nil {
			opt.applyWrite(&o)
		}
	}
	for name := range o.set {
		ok := name == "DryRun" && verb != "Get"
		for _, a := range allowedOptions(verb) {
			ok = ok || a == name
		}
		if !ok {
			return o, fmt.Errorf("client: %s does not take the %s option (it takes %v)", verb, name, allowedOptions(verb))
		}
	}
	switch {
	case o.fieldManager == "":
		return o, fmt.Errorf("client: %s: FieldManager must not be empty (omit it for %q)", verb, DefaultFieldManager)
	case o.gracePeriod != nil && *o.gracePeriod < 0:
		return o, fmt.Errorf("client: %s: GracePeriodSeconds(%d) must be >= 0", verb, *o.gracePeriod)
	case o.establish != nil && *o.establish <= 0:
		return o, fmt.Errorf("client: %s: EstablishTimeout(%v) must be positive", verb, time.Duration(*o.establish))
	case o.set["Concurrency"] && o.concurrency <= 0:
		return o, fmt.Errorf("client: %s: Concurrency(%d) must be positive (1 applies one object at a time)", verb, o.concurrency)
	case o.recreate && o.dryRun:
		return o, fmt.Errorf("client: %s: Recreate(true) cannot be used with DryRun(true): a dry run cannot delete and re-create", verb)
	}
	switch o.fieldValidation {
	case "", "Ignore", "Warn", "Strict":
	default:
		return o, fmt.Errorf("client: %s: FieldValidation(%q) must be Ignore, Warn or Strict", verb, o.fieldValidation)
	}
	if o.propagation != nil {
		switch *o.propagation {
		case metav1.DeletePropagationOrphan, metav1.DeletePropagationBackground, metav1.DeletePropagationForeground:
		default:
			return o, fmt.Errorf("client: %s: PropagationPolicy(%q) must be Orphan, Background or Foreground", verb, *o.propagation)
		}
	}
	return o, nil
}

// params puts the write options on a request.
func (o *writeOptions) params(r *rest.Request, verb string) *rest.Request {
	if o.dryRun {
		r = r.Param("dryRun", metav1.DryRunAll)
	}
	if verb == "Delete" || verb == "Get" {
		return r
	}
	r = r.Param("fieldManager", o.fieldManager)
	if o.fieldValidation != "" {
		r = r.Param("fieldValidation", o.fieldValidation)
	}
	if o.force != nil && verb == "Apply" {
		r = r.Param("force", strconv.FormatBool(*o.force))
	}
	return r
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
	if t.namespace != "" {
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

// locate maps obj to its resource and fills in a missing namespace.
func (c *Client) locate(obj Object, o *writeOptions, needName bool) (target, error) {
	gvk, err := GVKFor(obj)
	if err != nil {
		return target{}, err
	}
	m, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return target{}, fmt.Errorf("client: kind %s is not served by the API server (a CRD not installed yet?): %w", gvk, err)
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
		obj.SetNamespace(t.namespace)
	} else {
		obj.SetNamespace("")
	}
	return t, nil
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
func (c *Client) Get(ctx context.Context, obj Object, opts ...WriteOption) error {
	o, err := newWriteOptions("Get", opts)
	if err != nil {
		return err
	}
	t, err := c.locate(obj, &o, true)
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
func (c *Client) Create(ctx context.Context, obj Object, opts ...WriteOption) error {
	o, err := newWriteOptions("Create", opts)
	if err != nil {
		return err
	}
	return c.write(ctx, "Create", "POST", obj, &o, false)
}

// Update replaces obj on the server and fills it with the server's answer. A
// resourceVersion in obj makes it conditional (409 Conflict if the object
// changed since).
func (c *Client) Update(ctx context.Context, obj Object, opts ...WriteOption) error {
	o, err := newWriteOptions("Update", opts)
	if err != nil {
		return err
	}
	return c.write(ctx, "Update", "PUT", obj, &o, true)
}

func (c *Client) write(ctx context.Context, verb, method string, obj Object, o *writeOptions, withName bool) error {
	t, err := c.locate(obj, o, true)
	if err != nil {
		return err
	}
	data, err := encode(obj, t.gvk, false)
	if err != nil {
		return err
	}
	r := o.params(c.request(method, t, withName), verb).SetHeader("Content-Type", "application/json").Body(data)
	body, _, err := do(ctx, r, lower(verb), t)
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
func (c *Client) Patch(ctx context.Context, obj Object, p Patch, opts ...WriteOption) error {
	o, err := newWriteOptions("Patch", opts)
	if err != nil {
		return err
	}
	switch p.Type {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
	case types.ApplyYAMLPatchType, types.ApplyCBORPatchType:
		return fmt.Errorf("client: Patch: use Apply for server-side apply")
	default:
		return fmt.Errorf("client: Patch: unknown patch type %q; build the patch with JSONPatch, MergePatch or StrategicMergePatch", p.Type)
	}
	if len(p.Data) == 0 {
		return fmt.Errorf("client: Patch: empty patch data")
	}
	t, err := c.locate(obj, &o, true)
	if err != nil {
		return err
	}
	body, _, err := do(ctx, o.params(c.request("PATCH", t, true), "Patch").SetHeader("Content-Type", string(p.Type)).Body(p.Data), "patch", t)
	if err != nil {
		return err
	}
	return decodeInto(obj, body)
}

// Delete deletes the object named by obj's metadata. A missing object is a
// NotFound error (see [IgnoreNotFound]). obj is left as it was.
func (c *Client) Delete(ctx context.Context, obj Object, opts ...WriteOption) error {
	o, err := newWriteOptions("Delete", opts)
	if err != nil {
		return err
	}
	t, err := c.locate(obj, &o, true)
	if err != nil {
		return err
	}
	_, err = c.delete(ctx, t, &o)
	return err
}

func (c *Client) delete(ctx context.Context, t target, o *writeOptions) ([]byte, error) {
	policy := metav1.DeletePropagationBackground
	if o.propagation != nil {
		policy = *o.propagation
	}
	del := metav1.DeleteOptions{PropagationPolicy: &policy, GracePeriodSeconds: o.gracePeriod}
	if o.dryRun {
		del.DryRun = []string{metav1.DryRunAll}
	}
	data, err := json.Marshal(del)
	if err != nil {
		return nil, err
	}
	body, _, err := do(ctx, c.request("DELETE", t, true).SetHeader("Content-Type", "application/json").Body(data), "delete", t)
	return body, err
}

func lower(s string) string {
	b := []byte(s)
	if len(b) > 0 && b[0] >= 'A' && b[0] <= 'Z' {
		b[0] += 'a' - 'A'
	}
	return string(b)
}
