package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Outcome is what a write did to an object, in kubectl's words.
type Outcome string

// The outcomes Apply, ApplyManifests and DeleteManifests report.
const (
	Created    Outcome = "created"    // the object did not exist
	Configured Outcome = "configured" // the object existed and changed
	Unchanged  Outcome = "unchanged"  // the object existed and nothing changed
	Deleted    Outcome = "deleted"    // the object was deleted (or marked for deletion)
)

// Apply sends obj as a server-side apply patch (field manager "kubekit"
// unless [FieldManager] says otherwise; [ForceOwnership] to take fields over
// from other managers), creating the object if needed, fills obj with the
// result and reports what happened.
//
// The outcome comes from the API server's answers, never from comparing the
// object sent with the object stored: Apply reads the object first
// (resourceVersion, or NotFound), then applies.
//   - Created: the apply answered 201 Created, so this call created it.
//   - Unchanged: the object existed and its resourceVersion did not move (a
//     no-op apply does not write to etcd), or the only thing the write moved
//     was managedFields bookkeeping (e.g. the first re-apply of a Namespace
//     that names no fields records "before-first-apply" ownership).
//   - Configured: anything else. If another writer changes or creates the
//     object between the read and the apply, the outcome is Configured, never
//     a false Unchanged or Created.
//
// With [DryRun](true) nothing is stored and resourceVersions do not move, so
// Unchanged versus Configured compares the object read before with the
// dry-run answer, managedFields aside.
//
// managedFields in obj are not sent (the server rejects them in an apply). A
// resourceVersion in obj makes the apply conditional. Typed structs are sent
// as encoded by encoding/json: non-omitempty zero values in them become
// fields this manager owns, as with controller-runtime.
func (c *Client) Apply(ctx context.Context, obj Object, opts ...ApplyOption) (Outcome, error) {
	o, err := newWriteOptions(opts)
	if err != nil {
		return "", err
	}
	return c.apply(ctx, obj, &o)
}

func (c *Client) apply(ctx context.Context, obj Object, o *writeOptions) (Outcome, error) {
	t, err := c.locate(ctx, obj, o, true)
	if err != nil {
		return "", err
	}
	res, err := c.applyTarget(ctx, obj, t, o, nil)
	return res.outcome, err
}

// applyResult is what applyTarget did.
type applyResult struct {
	outcome   Outcome
	existed   bool // the read before the apply found the object
	recreated bool // Recreate deleted and re-created it
}

// applyTarget applies obj at t. The object as it was comes from pre when
// pre holds it, else from a GET.
func (c *Client) applyTarget(ctx context.Context, obj Object, t target, o *writeOptions, pre *prefetched) (applyResult, error) {
	data, err := encode(obj, t.gvk, true)
	if err != nil {
		return applyResult{}, err
	}
	before, known := pre.lookup(t)
	if !known {
		before, _, err = do(ctx, c.request("GET", t, true), "apply: read", t)
		if err != nil && !apierrors.IsNotFound(err) {
			return applyResult{}, err
		}
	}
	res := applyResult{existed: before != nil}
	r := o.params(c.request("PATCH", t, true), true).SetHeader("Content-Type", string(types.ApplyYAMLPatchType)).Body(data)
	after, code, err := do(ctx, r, "apply", t)
	if err != nil && o.recreate && res.existed && immutable(err) {
		after, err = c.recreate(ctx, t, before, data, o)
		if err == nil {
			res.recreated, res.outcome = true, Configured
			return res, decodeInto(obj, after)
		}
	}
	if err != nil {
		return res, err
	}
	if err := decodeInto(obj, after); err != nil {
		return res, err
	}
	switch {
	case code == http.StatusCreated:
		res.outcome = Created
	case !res.existed:
		res.outcome = Configured // created by someone else meanwhile
	case !o.dryRun && resourceVersion(before) == resourceVersion(after) && resourceVersion(after) != "":
		res.outcome = Unchanged
	case sameObject(before, after):
		res.outcome = Unchanged
	default:
		res.outcome = Configured
	}
	return res, nil
}

// immutable reports whether err is the server refusing a change to an
// immutable field.
func immutable(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	for _, cause := range status.Status().Details.Causes {
		if strings.Contains(cause.Message, "immutable") {
			return true
		}
	}
	return false
}

// recreate deletes the object at t, waits until it is gone and applies data
// again. If that apply fails it restores before (the object as read) and
// reports both errors.
func (c *Client) recreate(ctx context.Context, t target, before, data []byte, o *writeOptions) ([]byte, error) {
	del := writeOptions{}
	if _, err := c.delete(ctx, t, &del); err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("client: Recreate: %w", err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		_, _, err := do(ctx, c.request("GET", t, true), "recreate: wait for deletion", t)
		if apierrors.IsNotFound(err) {
			break
		}
		if err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("client: Recreate: %s not gone yet (finalizers?): %w", t, ctx.Err())
		case <-tick.C:
		}
	}
	r := o.params(c.request("PATCH", t, true), true).SetHeader("Content-Type", string(types.ApplyYAMLPatchType)).Body(data)
	after, _, err := do(ctx, r, "apply", t)
	if err == nil {
		return after, nil
	}
	old := &unstructured.Unstructured{}
	if uerr := old.UnmarshalJSON(before); uerr != nil {
		return nil, fmt.Errorf("client: an error occurred force-replacing the existing object with the newly provided one: %w; the original could not be decoded to restore it: %v", err, uerr)
	}
	for _, f := range []string{"resourceVersion", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "managedFields"} {
		unstructured.RemoveNestedField(old.Object, "metadata", f)
	}
	body, merr := old.MarshalJSON()
	if merr == nil {
		_, _, merr = do(ctx, c.request("POST", t, false).SetHeader("Content-Type", "application/json").Body(body), "recreate: restore", t)
	}
	if merr != nil {
		return nil, fmt.Errorf("client: an error occurred force-replacing the existing object with the newly provided one: %w; additionally, an error occurred attempting to restore the original object: %v", err, merr)
	}
	return nil, fmt.Errorf("client: force-replacing failed, the original object was restored: %w", err)
}

type metaOnly struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
}

func resourceVersion(body []byte) string {
	var m metaOnly
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	return m.Metadata.ResourceVersion
}

// sameObject compares two server answers without managedFields, whose
// timestamps move on every apply.
func sameObject(a, b []byte) bool {
	var x, y map[string]any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	for _, m := range []map[string]any{x, y} {
		if md, ok := m["metadata"].(map[string]any); ok {
			delete(md, "managedFields")
			delete(md, "resourceVersion")
		}
	}
	return reflect.DeepEqual(x, y)
}

// String returns the outcome as kubectl prints it.
func (o Outcome) String() string { return string(o) }

var _ fmt.Stringer = Outcome("")

// prefetchMin is the smallest number of objects of one resource and
// namespace in a stage for which ApplyManifests lists them in one request
// instead of reading each: BenchmarkApplyManifestsBundle measured the read
// per object as half of an unchanged re-apply's requests.
const prefetchMin = 4

// prefetched holds objects as one LIST returned them, by resource,
// namespace and name. A nil *prefetched holds nothing.
type prefetched struct {
	mu      sync.Mutex
	objects map[prefetchKey][]byte // nil body: listed and not there
}

type prefetchKey struct {
	resource  schema.GroupVersionResource
	namespace string
	name      string
}

// lookup returns the object at t as listed (nil when the list showed it
// does not exist) and whether the list covered it.
func (p *prefetched) lookup(t target) ([]byte, bool) {
	if p == nil {
		return nil, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	body, ok := p.objects[prefetchKey{t.mapping.Resource, t.namespace, t.name}]
	return body, ok
}

// prefetch lists, for each resource and namespace with at least prefetchMin
// of ts, that collection in one request of at most a few more items than
// wanted. Names the list does not cover (a truncated page, a failed list:
// Forbidden, say) are left for applyTarget to read one by one.
func (c *Client) prefetch(ctx context.Context, ts []target) *prefetched {
	type group struct {
		t     target
		names []string
	}
	groups := map[prefetchKey]*group{}
	var keys []prefetchKey
	for _, t := range ts {
		k := prefetchKey{resource: t.mapping.Resource, namespace: t.namespace}
		g, ok := groups[k]
		if !ok {
			g = &group{t: t}
			groups[k] = g
			keys = append(keys, k)
		}
		g.names = append(g.names, t.name)
	}
	p := &prefetched{objects: map[prefetchKey][]byte{}}
	for _, k := range keys {
		g := groups[k]
		if len(g.names) < prefetchMin {
			continue
		}
		limit := 2*len(g.names) + 100
		body, _, err := do(ctx, c.request("GET", g.t, false).Param("limit", strconv.Itoa(limit)), "apply: list", g.t)
		if err != nil {
			c.log.V(1).Info("listing before apply failed; reading objects one by one", "resource", g.t.mapping.Resource.String(), "namespace", g.t.namespace, "error", err.Error())
			continue
		}
		var list struct {
			Metadata struct {
				Continue string `json:"continue"`
			} `json:"metadata"`
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			continue
		}
		listed := map[string][]byte{}
		for _, item := range list.Items {
			u := unstructured.Unstructured{Object: item}
			u.SetGroupVersionKind(g.t.gvk) // list items carry no apiVersion or kind
			b, err := u.MarshalJSON()
			if err != nil {
				continue
			}
			listed[u.GetName()] = b
		}
		for _, name := range g.names {
			b, ok := listed[name]
			if ok || list.Metadata.Continue == "" {
				p.objects[prefetchKey{k.resource, k.namespace, name}] = b
			}
		}
	}
	return p
}
