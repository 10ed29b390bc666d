package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// DefaultEstablishTimeout is how long ApplyManifests waits for a CRD to be
// Established unless [EstablishTimeout] says otherwise.
const DefaultEstablishTimeout = 30 * time.Second

// ManifestResult is what ApplyManifests or DeleteManifests did with one
// object. Exactly one of Outcome and Err is set.
type ManifestResult struct {
	Manifest
	Outcome Outcome
	DryRun  bool  // nothing was stored: the outcome is what would have happened
	Err     error // a *ManifestError wrapping the API error
	// Existed reports whether the object existed before an apply (for
	// kubectl's "error when creating" versus "error when patching").
	Existed bool
}

// Name is kubectl's name for the object: "deployment.apps/web",
// "configmap/settings".
func (r ManifestResult) Name() string { return KubectlName(r.Object) }

// KubectlName is how kubectl names obj in its output: lower-case kind, the
// group when not core, a slash and the name ("deployment.apps/web").
func KubectlName(obj *unstructured.Unstructured) string {
	if obj == nil {
		return ""
	}
	gvk := obj.GroupVersionKind()
	k := strings.ToLower(gvk.Kind)
	if gvk.Group != "" {
		k += "." + gvk.Group
	}
	return k + "/" + obj.GetName()
}

func isCRD(gk schema.GroupKind) bool {
	return gk == schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}
}

// phase orders kinds for apply: Namespaces, then CRDs, then everything else.
func phase(m Manifest) int {
	gk := m.Object.GroupVersionKind().GroupKind()
	switch {
	case gk == schema.GroupKind{Kind: "Namespace"}:
		return 0
	case isCRD(gk):
		return 1
	}
	return 2
}

// ApplyManifests applies ms with server-side apply (see [Client.Apply]) in a
// safe order: Namespaces first, then CustomResourceDefinitions, then the rest,
// each group in input order. Before the first custom resource of a CRD
// applied in the same call it waits (up to [EstablishTimeout], default 30s)
// for the CRD to be Established and served, so a manifest may carry a CRD and
// its resources together. (With [DryRun](true) nothing is created, so such
// resources fail as they would with kubectl.)
//
// It keeps going after a failure. The results are in input order, one per
// manifest; the error joins every result's error (nil when all succeeded),
// or is an option error with no results.
func (c *Client) ApplyManifests(ctx context.Context, ms []Manifest, opts ...WriteOption) ([]ManifestResult, error) {
	o, err := newWriteOptions("ApplyManifests", opts)
	if err != nil {
		return nil, err
	}
	timeout := DefaultEstablishTimeout
	if o.establish != nil {
		timeout = *o.establish
	}
	results := make([]ManifestResult, len(ms))
	order := make([]int, len(ms))
	for i := range ms {
		order[i] = i
		results[i] = ManifestResult{Manifest: ms[i], DryRun: o.dryRun}
	}
	for _, i := range order {
		if ms[i].Object == nil {
			results[i].Err = &ManifestError{Manifest: ms[i], Err: errors.New("no object")}
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return phase(ms[a]) - phase(ms[b]) })

	crds := map[schema.GroupKind]int{} // custom kind -> index of its CRD in ms
	waited := map[schema.GroupKind]error{}
	for _, i := range order {
		r := &results[i]
		if r.Err != nil {
			continue
		}
		obj := ms[i].Object.DeepCopy()
		gk := obj.GroupVersionKind().GroupKind()
		if j, ok := crds[gk]; ok && !o.dryRun {
			werr, done := waited[gk]
			if !done {
				werr = c.waitServed(ctx, results[j].Object, gk, timeout)
				waited[gk] = werr
			}
			if werr != nil {
				r.Err = &ManifestError{Manifest: ms[i], Err: werr}
				continue
			}
		}
		t, err := c.locate(obj, &o, true)
		if err != nil {
			r.Err = &ManifestError{Manifest: ms[i], Err: err}
			continue
		}
		outcome, existed, err := c.applyTarget(ctx, obj, t, &o)
		r.Existed = existed
		if err != nil {
			r.Err = &ManifestError{Manifest: ms[i], Err: err, Ref: t.String()}
			continue
		}
		r.Outcome, r.Object = outcome, obj
		if isCRD(gk) {
			group, _, _ := unstructured.NestedString(obj.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(obj.Object, "spec", "names", "kind")
			crds[schema.GroupKind{Group: group, Kind: kind}] = i
		}
	}
	return results, joinResults(results)
}

// waitServed waits for crd to be Established and for the RESTMapper to know
// gk. A failed read is returned at once: it is not "not yet".
func (c *Client) waitServed(parent context.Context, crd *unstructured.Unstructured, gk schema.GroupKind, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	established := false
	for {
		if !established {
			cur := crd.DeepCopy()
			if err := c.Get(ctx, cur); err != nil {
				if perr := parent.Err(); perr != nil {
					err = perr
				}
				return fmt.Errorf("wait for CRD %s: %w", crd.GetName(), err)
			}
			conds, _, _ := unstructured.NestedSlice(cur.Object, "status", "conditions")
			for _, cd := range conds {
				m, _ := cd.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					established = true
				}
			}
		}
		if established {
			if _, err := c.RESTMapper().RESTMapping(gk); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if err := parent.Err(); err != nil {
				return fmt.Errorf("wait for CRD %s: %w", crd.GetName(), err)
			}
			return fmt.Errorf("CRD %s not Established and served within %v (raise EstablishTimeout): %w", crd.GetName(), timeout, ctx.Err())
		case <-tick.C:
		}
	}
}

// DeleteManifests deletes ms in the reverse of ApplyManifests' order: custom
// resources and other objects last to first, then CRDs, then Namespaces. It
// keeps going after a failure (a missing object is a NotFound error, see
// [IgnoreNotFound]); results are in input order and the error joins them.
// Dependents are deleted in the background unless [PropagationPolicy] says
// otherwise, as with kubectl delete. Each result's Object carries the uid the
// server reported, so [Client.Wait] with [ForDeleted] can tell the deleted
// object from one re-created since, as kubectl delete --wait does.
func (c *Client) DeleteManifests(ctx context.Context, ms []Manifest, opts ...WriteOption) ([]ManifestResult, error) {
	o, err := newWriteOptions("DeleteManifests", opts)
	if err != nil {
		return nil, err
	}
	results := make([]ManifestResult, len(ms))
	var order []int
	for i := range ms {
		results[i] = ManifestResult{Manifest: ms[i], DryRun: o.dryRun}
		if ms[i].Object == nil {
			results[i].Err = &ManifestError{Manifest: ms[i], Err: errors.New("no object")}
			continue
		}
		order = append(order, i)
	}
	slices.SortStableFunc(order, func(a, b int) int { return phase(ms[a]) - phase(ms[b]) })
	slices.Reverse(order)
	for _, i := range order {
		r := &results[i]
		obj := ms[i].Object.DeepCopy()
		t, err := c.locate(obj, &o, true)
		if err != nil {
			r.Err = &ManifestError{Manifest: ms[i], Err: err}
			continue
		}
		body, err := c.delete(ctx, t, &o)
		if err != nil {
			r.Err = &ManifestError{Manifest: ms[i], Err: err, Ref: t.String()}
			continue
		}
		if uid := deletedUID(body); uid != "" {
			obj.SetUID(uid)
		}
		r.Outcome, r.Object, r.Existed = Deleted, obj, true
	}
	return results, joinResults(results)
}

func joinResults(rs []ManifestResult) error {
	var errs []error
	for _, r := range rs {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return errors.Join(errs...)
}

// deletedUID is the uid in a delete's answer: the object itself (still
// there, with finalizers) or a Status whose details name it.
func deletedUID(body []byte) types.UID {
	var m struct {
		Kind     string `json:"kind"`
		Metadata struct {
			UID types.UID `json:"uid"`
		} `json:"metadata"`
		Details struct {
			UID types.UID `json:"uid"`
		} `json:"details"`
	}
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	if m.Kind == "Status" {
		return m.Details.UID
	}
	return m.Metadata.UID
}
