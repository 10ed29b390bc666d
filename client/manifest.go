package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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
	// Recreated reports that [Recreate] deleted and re-created the object
	// because the apply changed an immutable field.
	Recreated bool
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

// DefaultConcurrency is how many objects of one stage ApplyManifests applies
// at once unless [Concurrency] says otherwise.
const DefaultConcurrency = 16

// ApplyManifests applies ms with server-side apply (see [Client.Apply]) in a
// safe order: Namespaces first, then CustomResourceDefinitions, then the rest.
// Within a stage up to [Concurrency] objects (default [DefaultConcurrency])
// are applied at once, every request through the client's rate limiter.
// Where a stage has 4 or more objects of one resource in one namespace, the
// read that tells created, configured and unchanged apart (see
// [Client.Apply]) is one list of that collection instead of a read per
// object.
// Before the custom resources of a CRD applied in the same call it waits (up
// to [EstablishTimeout], default 30s) for the CRD to be Established and
// served, so a manifest may carry a CRD and its resources together. (With
// [DryRun](true) nothing is created, so such resources fail as they would
// with kubectl.)
//
// It keeps going after a failure. The results are in input order, one per
// manifest; the error joins every result's error (nil when all succeeded),
// or is an option error with no results.
func (c *Client) ApplyManifests(ctx context.Context, ms []Manifest, opts ...ApplyManifestsOption) ([]ManifestResult, error) {
	o, err := newWriteOptions(opts)
	if err != nil {
		return nil, err
	}
	timeout := DefaultEstablishTimeout
	if o.establish != nil {
		timeout = *o.establish
	}
	workers := DefaultConcurrency
	if o.concurrency != nil {
		workers = *o.concurrency
	}
	results := make([]ManifestResult, len(ms))
	var stages [3][]int
	for i := range ms {
		results[i] = ManifestResult{Manifest: ms[i], DryRun: o.dryRun}
		if ms[i].Object == nil {
			results[i].Err = &ManifestError{Manifest: ms[i], Err: errors.New("no object")}
			continue
		}
		p := phase(ms[i])
		stages[p] = append(stages[p], i)
	}

	crds := map[schema.GroupKind]int{} // custom kind -> index of its CRD in ms
	waited := map[schema.GroupKind]error{}
	for p, stage := range stages {
		if p == 2 && !o.dryRun {
			// Wait for the CRDs this stage needs first, in input order.
			for _, i := range stage {
				gk := ms[i].Object.GroupVersionKind().GroupKind()
				if j, ok := crds[gk]; ok {
					if _, done := waited[gk]; !done {
						waited[gk] = c.waitServed(ctx, results[j].Object, gk, timeout)
					}
				}
			}
		}
		objs := make([]*unstructured.Unstructured, len(ms))
		targets := make([]target, len(ms))
		var located []target
		var todo []int
		for _, i := range stage {
			r := &results[i]
			objs[i] = ms[i].Object.DeepCopy()
			if werr := waited[objs[i].GroupVersionKind().GroupKind()]; werr != nil {
				r.Err = &ManifestError{Manifest: ms[i], Err: werr}
				continue
			}
			t, err := c.locate(ctx, objs[i], &o, true)
			if err != nil {
				r.Err = &ManifestError{Manifest: ms[i], Err: err}
				continue
			}
			targets[i] = t
			located = append(located, t)
			todo = append(todo, i)
		}
		pre := c.prefetch(ctx, located)
		forEach(todo, workers, func(i int) {
			r := &results[i]
			obj, t := objs[i], targets[i]
			res, err := c.applyTarget(ctx, obj, t, &o, pre)
			r.Existed, r.Recreated = res.existed, res.recreated
			if err != nil {
				r.Err = &ManifestError{Manifest: ms[i], Err: err, Ref: t.String()}
				return
			}
			r.Outcome, r.Object = res.outcome, obj
		})
		for _, i := range stage {
			if r := results[i]; r.Err == nil && isCRD(r.Object.GroupVersionKind().GroupKind()) {
				group, _, _ := unstructured.NestedString(r.Object.Object, "spec", "group")
				kind, _, _ := unstructured.NestedString(r.Object.Object, "spec", "names", "kind")
				crds[schema.GroupKind{Group: group, Kind: kind}] = i
			}
		}
	}
	return results, joinResults(results)
}

// forEach calls fn for each index, at most n at a time, and returns when all
// calls have.
func forEach(idx []int, n int, fn func(int)) {
	if n <= 1 || len(idx) <= 1 {
		for _, i := range idx {
			fn(i)
		}
		return
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, i := range idx {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
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
					return fmt.Errorf("wait for CRD %s: %w", crd.GetName(), perr)
				}
				if ctx.Err() != nil {
					return deadline(crd, timeout, ctx.Err())
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
			return deadline(crd, timeout, ctx.Err())
		case <-tick.C:
		}
	}
}

func deadline(crd *unstructured.Unstructured, timeout time.Duration, err error) error {
	return fmt.Errorf("CRD %s not Established and served within %v: raise it with the EstablishTimeout write option, e.g. client.EstablishTimeout(2*time.Minute): %w",
		crd.GetName(), timeout, err)
}

// DeleteManifests deletes ms in the reverse of ApplyManifests' order: custom
// resources and other objects last to first, then CRDs, then Namespaces. It
// keeps going after a failure (a missing object is a NotFound error, see
// [IgnoreNotFound]); results are in input order and the error joins them.
// Dependents are deleted in the background unless [PropagationPolicy] says
// otherwise, as with kubectl delete. Each result's Object carries the uid the
// server reported, so [Client.Wait] with [ForDeleted] can tell the deleted
// object from one re-created since, as kubectl delete --wait does.
func (c *Client) DeleteManifests(ctx context.Context, ms []Manifest, opts ...DeleteManifestsOption) ([]ManifestResult, error) {
	o, err := newWriteOptions(opts)
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
		t, err := c.locate(ctx, obj, &o, true)
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
