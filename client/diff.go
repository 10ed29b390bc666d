package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// DiffResult is what [Client.Diff] found for one manifest. Live and Merged
// are YAML as kubectl diff writes them (sigs.k8s.io/yaml, keys sorted),
// without managedFields, Secret data masked. Manifest.Object is a copy of the
// manifest's object with its namespace filled in.
type DiffResult struct {
	Manifest
	Live   []byte // the object on the server; nil when it does not exist
	Merged []byte // the object as applying the manifest would leave it
	Err    error  // a *ManifestError; Live and Merged are then nil
}

// Changed reports whether applying the manifest would change the object.
func (r DiffResult) Changed() bool { return r.Err == nil && !bytes.Equal(r.Live, r.Merged) }

// Unified is the unified diff (3 lines of context, like diff -u) of Live and
// Merged, headed "--- from\tfromDate" and "+++ to\ttoDate" (a date may be
// empty); "" when nothing changed.
func (r DiffResult) Unified(from, fromDate, to, toDate string) string {
	if !r.Changed() {
		return ""
	}
	s, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: lines(r.Live), B: lines(r.Merged),
		FromFile: from, FromDate: fromDate, ToFile: to, ToDate: toDate,
		Context: 3,
	})
	if err != nil { // writing to a bytes.Buffer does not fail
		return ""
	}
	return s
}

func lines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	ls := strings.SplitAfter(string(b), "\n")
	if ls[len(ls)-1] == "" {
		ls = ls[:len(ls)-1]
	}
	return ls
}

// Diff compares each manifest with the live object, like kubectl diff
// --server-side: it reads the object, then asks the API server for the result
// of applying the manifest with server-side apply in dry-run mode (the
// defaults, admission and conversions the server would do included). It takes
// the options Apply takes. managedFields are left out, and in a v1 Secret
// every data value is shown as "***" ("*** (before)" and "*** (after)" when it
// changes), as kubectl masks them.
//
// It keeps going after a failure; results are in input order and the error
// joins the failures (a conflict with another field manager among them:
// [ForceOwnership] takes the fields over in the dry run).
func (c *Client) Diff(ctx context.Context, ms []Manifest, opts ...DiffOption) ([]DiffResult, error) {
	o, err := newWriteOptions(opts)
	if err != nil {
		return nil, err
	}
	o.dryRun = true
	results := make([]DiffResult, len(ms))
	var errs []error
	for i, m := range ms {
		results[i].Manifest = m
		if m.Object == nil {
			results[i].Err = &ManifestError{Manifest: m, Err: errors.New("no object")}
		} else {
			results[i].Live, results[i].Merged, results[i].Err = c.diffOne(ctx, &results[i].Manifest, &o)
		}
		if results[i].Err != nil {
			errs = append(errs, results[i].Err)
		}
	}
	return results, errors.Join(errs...)
}

// diffOne diffs m and replaces m.Object with a copy whose namespace is
// filled in.
func (c *Client) diffOne(ctx context.Context, mp *Manifest, o *writeOptions) (live, merged []byte, _ error) {
	m := *mp
	obj := m.Object.DeepCopy()
	t, err := c.locate(ctx, obj, o, true)
	if err != nil {
		return nil, nil, &ManifestError{Manifest: m, Err: err}
	}
	mp.Object = obj
	before, _, err := do(ctx, c.request("GET", t, true), "diff: read", t)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, nil, &ManifestError{Manifest: m, Err: err, Ref: t.String()}
	}
	if err != nil {
		before = nil
	}
	data, err := encode(obj, t.gvk, true)
	if err != nil {
		return nil, nil, &ManifestError{Manifest: m, Err: err}
	}
	r := o.params(c.request("PATCH", t, true), true).SetHeader("Content-Type", string(types.ApplyYAMLPatchType)).Body(data)
	after, _, err := do(ctx, r, "diff: dry-run apply", t)
	if err != nil {
		return nil, nil, &ManifestError{Manifest: m, Err: err, Ref: t.String()}
	}
	from, err := diffObject(before)
	if err != nil {
		return nil, nil, &ManifestError{Manifest: m, Err: err, Ref: t.String()}
	}
	to, err := diffObject(after)
	if err != nil {
		return nil, nil, &ManifestError{Manifest: m, Err: err, Ref: t.String()}
	}
	if gvk := to.GroupVersionKind(); gvk.Group == "" && gvk.Version == "v1" && gvk.Kind == "Secret" {
		maskSecrets(from, to)
	}
	if live, err = toYAML(from); err == nil {
		merged, err = toYAML(to)
	}
	if err != nil {
		return nil, nil, &ManifestError{Manifest: m, Err: err, Ref: t.String()}
	}
	return live, merged, nil
}

// diffObject decodes a server answer without managedFields; nil for none.
func diffObject(body []byte) (*unstructured.Unstructured, error) {
	if body == nil {
		return nil, nil
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(body); err != nil {
		return nil, fmt.Errorf("client: diff: decode the server's answer: %w", err)
	}
	u.SetManagedFields(nil)
	return u, nil
}

func toYAML(u *unstructured.Unstructured) ([]byte, error) {
	if u == nil {
		return nil, nil
	}
	return yaml.Marshal(u.Object)
}

// The masks kubectl diff shows for Secret data.
const (
	maskSame   = "***"
	maskBefore = "*** (before)"
	maskAfter  = "*** (after)"
)

// maskSecrets hides Secret data values as kubectl diff does, keeping
// visible which keys were added, removed or changed.
func maskSecrets(from, to *unstructured.Unstructured) {
	var a, b map[string]any
	if from != nil {
		a, _, _ = unstructured.NestedMap(from.Object, "data")
	}
	if to != nil {
		b, _, _ = unstructured.NestedMap(to.Object, "data")
	}
	for k, v := range a {
		if w, ok := b[k]; ok {
			if v != w {
				a[k], b[k] = maskBefore, maskAfter
				continue
			}
			b[k] = maskSame
		}
		a[k] = maskSame
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			b[k] = maskSame
		}
	}
	if a != nil {
		_ = unstructured.SetNestedMap(from.Object, a, "data")
	}
	if b != nil {
		_ = unstructured.SetNestedMap(to.Object, b, "data")
	}
}
