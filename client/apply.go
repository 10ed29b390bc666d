package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
func (c *Client) Apply(ctx context.Context, obj Object, opts ...WriteOption) (Outcome, error) {
	o, err := newWriteOptions("Apply", opts)
	if err != nil {
		return "", err
	}
	return c.apply(ctx, obj, &o)
}

func (c *Client) apply(ctx context.Context, obj Object, o *writeOptions) (Outcome, error) {
	t, err := c.locate(obj, o, true)
	if err != nil {
		return "", err
	}
	outcome, _, err := c.applyTarget(ctx, obj, t, o)
	return outcome, err
}

// applyTarget applies obj at t; existed reports whether the read before the
// apply found the object.
func (c *Client) applyTarget(ctx context.Context, obj Object, t target, o *writeOptions) (_ Outcome, existed bool, _ error) {
	data, err := encode(obj, t.gvk, true)
	if err != nil {
		return "", false, err
	}
	before, _, err := do(ctx, c.request("GET", t, true), "apply: read", t)
	existed = err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return "", false, err
	}
	r := o.params(c.request("PATCH", t, true), "Apply").SetHeader("Content-Type", string(types.ApplyYAMLPatchType)).Body(data)
	after, code, err := do(ctx, r, "apply", t)
	if err != nil {
		return "", existed, err
	}
	if err := decodeInto(obj, after); err != nil {
		return "", existed, err
	}
	switch {
	case code == http.StatusCreated:
		return Created, existed, nil
	case !existed:
		return Configured, existed, nil // created by someone else meanwhile
	case !o.dryRun && resourceVersion(before) == resourceVersion(after) && resourceVersion(after) != "":
		return Unchanged, existed, nil
	case sameObject(before, after):
		return Unchanged, existed, nil
	default:
		return Configured, existed, nil
	}
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
