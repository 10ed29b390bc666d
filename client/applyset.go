package client

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// The labels and annotations of the ApplySet specification (KEP-3659), as
// kubectl uses them.
const (
	ApplySetIDLabel              = "applyset.kubernetes.io/id"
	ApplySetPartOfLabel          = "applyset.kubernetes.io/part-of"
	ApplySetToolingAnnotation    = "applyset.kubernetes.io/tooling"
	ApplySetGroupKindsAnnotation = "applyset.kubernetes.io/contains-group-kinds"
	ApplySetNamespacesAnnotation = "applyset.kubernetes.io/additional-namespaces"
)

// Pruned is the outcome of an ApplySet member deleted by
// [Client.ApplyAndPrune] because it is no longer in the set.
const Pruned Outcome = "pruned"

// ApplySet names the parent object of a kubectl-compatible ApplySet: a
// Secret (the default) or a ConfigMap in a namespace. Objects applied with
// [Client.ApplyAndPrune] become its members; kubectl apply --prune
// --applyset=NAME manages the same set.
type ApplySet struct {
	Kind      string // "Secret" (default) or "ConfigMap"
	Name      string
	Namespace string
	// Tooling is the applyset.kubernetes.io/tooling value, "name/version".
	// Default "kubekit/<kubekit's module version>". A set whose parent
	// names another tool is refused.
	Tooling string
}

// ParseApplySet reads kubectl's --applyset value, [secrets/|configmaps/]NAME
// (singular resource names too), for a parent in namespace.
func ParseApplySet(ref, namespace string) (ApplySet, error) {
	a := ApplySet{Kind: "Secret", Name: ref, Namespace: namespace}
	if res, name, ok := strings.Cut(ref, "/"); ok {
		a.Name = name
		switch res {
		case "secrets", "secret":
		case "configmaps", "configmap":
			a.Kind = "ConfigMap"
		default:
			return a, fmt.Errorf("client: ParseApplySet(%q): kubekit supports Secret and ConfigMap parents; use secrets/NAME, configmaps/NAME or NAME", ref)
		}
	}
	if a.Name == "" {
		return a, fmt.Errorf("client: ParseApplySet(%q): name cannot be blank", ref)
	}
	return a, nil
}

// DefaultTooling is the tooling annotation kubekit writes:
// "kubekit/<version>", the version of the kubekit module in the running
// binary ("v0.0.0-devel" when it cannot be told).
func DefaultTooling() string {
	v := "v0.0.0-devel"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path == "github.com/kubekit/kubekit" && strings.HasPrefix(bi.Main.Version, "v") {
			v = bi.Main.Version
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/kubekit/kubekit" && strings.HasPrefix(d.Version, "v") {
				v = d.Version
			}
		}
	}
	return "kubekit/" + v
}

func (a ApplySet) kind() string {
	if a.Kind == "" {
		return "Secret"
	}
	return a.Kind
}

// ID is the applyset.kubernetes.io/id kubectl computes for the same parent:
// "applyset-" + base64url(sha256(name.namespace.kind.group)) + "-v1".
func (a ApplySet) ID() string {
	sum := sha256.Sum256([]byte(strings.Join([]string{a.Name, a.Namespace, a.kind(), ""}, ".")))
	return "applyset-" + base64.RawURLEncoding.EncodeToString(sum[:]) + "-v1"
}

// String is kubectl's name for the parent in messages: "secrets./NAME".
func (a ApplySet) String() string {
	return strings.ToLower(a.kind()) + "s./" + a.Name
}

func (a ApplySet) tooling() string {
	if a.Tooling == "" {
		return DefaultTooling()
	}
	return a.Tooling
}

func (a ApplySet) validate() error {
	var errs []error
	if a.kind() != "Secret" && a.kind() != "ConfigMap" {
		errs = append(errs, fmt.Errorf("field Kind %q: the parent must be a Secret or a ConfigMap", a.Kind))
	}
	if a.Name == "" {
		errs = append(errs, errors.New("field Name is empty: name the parent object"))
	}
	if a.Namespace == "" {
		errs = append(errs, errors.New("namespace is required to use namespace-scoped ApplySet"))
	}
	if name, ver, ok := strings.Cut(a.tooling(), "/"); !ok || name == "" || ver == "" {
		errs = append(errs, fmt.Errorf("field Tooling %q: want name/version, e.g. kubekit/v1.0.0", a.Tooling))
	}
	if len(errs) > 0 {
		return fmt.Errorf("client: ApplySet %s: %w", a, errors.Join(errs...))
	}
	return nil
}

// ApplyAndPrune applies ms as members of set and deletes the members that
// are no longer in it, as kubectl apply --server-side --prune --applyset
// does (KEP-3659):
//
//  1. It reads the parent: one that exists must carry this tooling's name
//     (a set managed by another tool is refused) and kubectl's id.
//  2. It records on the parent the union of the kinds and namespaces it
//     listed before and those of ms (so an interrupted run leaks nothing).
//  3. It applies ms, each labelled applyset.kubernetes.io/part-of, with
//     [Client.ApplyManifests] (same options).
//  4. Only when every object applied: it lists the recorded kinds in the
//     recorded namespaces by that label and deletes (propagation
//     Background) every member not applied now, then records the new kinds
//     and namespaces on the parent.
//
// applied has one result per manifest in input order; pruned has one per
// deleted member (Outcome [Pruned]), kinds and namespaces sorted. With
// [DryRun](true) nothing is stored, the parent included.
func (c *Client) ApplyAndPrune(ctx context.Context, set ApplySet, ms []Manifest, opts ...ApplyManifestsOption) (applied, pruned []ManifestResult, err error) {
	o, err := newWriteOptions(opts)
	if err != nil {
		return nil, nil, err
	}
	if err := set.validate(); err != nil {
		return nil, nil, err
	}
	id := set.ID()
	members := make([]Manifest, len(ms))
	for i, m := range ms {
		members[i] = m
		if m.Object == nil {
			continue
		}
		obj := m.Object.DeepCopy()
		labels := obj.GetLabels()
		if _, ok := labels[ApplySetPartOfLabel]; ok {
			return nil, nil, &ManifestError{Manifest: m, Err: fmt.Errorf("ApplySet label %q already set in input data; remove it, ApplyAndPrune sets it", ApplySetPartOfLabel)}
		}
		if labels == nil {
			labels = map[string]string{}
		}
		labels[ApplySetPartOfLabel] = id
		obj.SetLabels(labels)
		members[i].Object = obj
	}
	parent := &unstructured.Unstructured{}
	parent.SetAPIVersion("v1")
	parent.SetKind(set.kind())
	parent.SetName(set.Name)
	parent.SetNamespace(set.Namespace)
	current, currentNS, err := c.readApplySet(ctx, set, parent)
	if err != nil {
		return nil, nil, err
	}

	updated := map[schema.GroupKind]*meta.RESTMapping{}
	updatedNS := map[string]bool{}
	for _, m := range members {
		if m.Object == nil {
			continue
		}
		gvk := m.Object.GroupVersionKind()
		mapping, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			continue // ApplyManifests reports it (or serves the kind once its CRD is in)
		}
		updated[gvk.GroupKind()] = mapping
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := m.Object.GetNamespace()
			if ns == "" {
				ns = o.namespace
			}
			if ns == "" {
				ns = c.Namespace()
			}
			updatedNS[ns] = true
		}
	}
	superset := map[schema.GroupKind]*meta.RESTMapping{}
	for gk, m := range current {
		superset[gk] = m
	}
	for gk, m := range updated {
		superset[gk] = m
	}
	if err := c.writeApplySet(ctx, set, superset, union(currentNS, updatedNS), &o); err != nil {
		return nil, nil, err
	}

	applied, err = c.ApplyManifests(ctx, members, opts...)
	if err != nil {
		return applied, nil, err
	}
	visited := map[types.UID]bool{}
	for _, r := range applied {
		visited[r.Object.GetUID()] = true
		gvk := r.Object.GroupVersionKind()
		if _, ok := updated[gvk.GroupKind()]; !ok { // a kind served only after its CRD was applied
			if mapping, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
				updated[gvk.GroupKind()] = mapping
			}
		}
	}
	pruned, err = c.prune(ctx, id, current, currentNS, visited, &o)
	if err != nil {
		return applied, pruned, err
	}
	if err := c.writeApplySet(ctx, set, updated, updatedNS, &o); err != nil {
		return applied, pruned, fmt.Errorf("client: apply and prune succeeded, but ApplySet update failed: %w", err)
	}
	return applied, pruned, nil
}

func union(a, b map[string]bool) map[string]bool {
	u := map[string]bool{}
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}

// readApplySet reads the parent and returns the kinds and namespaces it
// records (the parent's own namespace included); none when it does not
// exist yet.
func (c *Client) readApplySet(ctx context.Context, set ApplySet, parent *unstructured.Unstructured) (map[schema.GroupKind]*meta.RESTMapping, map[string]bool, error) {
	kinds := map[schema.GroupKind]*meta.RESTMapping{}
	namespaces := map[string]bool{set.Namespace: true}
	live := parent.DeepCopy()
	err := c.Get(ctx, live)
	if apierrors.IsNotFound(err) {
		return kinds, namespaces, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("client: failed to fetch ApplySet parent object %q: %w", set, err)
	}
	ann := live.GetAnnotations()
	tool, ok := ann[ApplySetToolingAnnotation]
	if !ok {
		return nil, nil, fmt.Errorf("client: ApplySet parent object %q already exists and is missing required annotation %q", set, ApplySetToolingAnnotation)
	}
	want, _, _ := strings.Cut(set.tooling(), "/")
	if got := toolName(tool); got != want {
		return nil, nil, fmt.Errorf("client: ApplySet parent object %q already exists and is managed by tooling %q instead of %q; use that tool, or another ApplySet name", set, got, want)
	}
	idLabel, ok := live.GetLabels()[ApplySetIDLabel]
	if !ok {
		return nil, nil, fmt.Errorf("client: ApplySet parent object %q exists and does not have required label %s", set, ApplySetIDLabel)
	}
	if idLabel != set.ID() {
		return nil, nil, fmt.Errorf("client: ApplySet parent object %q exists and has incorrect value for label %q (got: %s, want: %s)", set, ApplySetIDLabel, idLabel, set.ID())
	}
	gks, ok := ann[ApplySetGroupKindsAnnotation]
	if !ok {
		return nil, nil, fmt.Errorf("client: ApplySet parent object %q has no %q annotation (kubectl and kubekit require it)", set, ApplySetGroupKindsAnnotation)
	}
	for _, s := range strings.Split(gks, ",") {
		if s == "" {
			continue
		}
		gk := schema.ParseGroupKind(s)
		m, err := c.RESTMapper().RESTMapping(gk)
		if err != nil {
			return nil, nil, fmt.Errorf("client: could not find mapping for kind in %q annotation of ApplySet %q: %w", ApplySetGroupKindsAnnotation, set, err)
		}
		kinds[gk] = m
	}
	for _, ns := range strings.Split(ann[ApplySetNamespacesAnnotation], ",") {
		if ns != "" {
			namespaces[ns] = true
		}
	}
	return kinds, namespaces, nil
}

// toolName is the tooling annotation without its version, as kubectl
// compares it.
func toolName(tooling string) string {
	if i := strings.LastIndex(tooling, "/"); i >= 0 {
		return tooling[:i]
	}
	return tooling
}

// writeApplySet server-side applies the parent's id label and annotations
// (field manager "<tool>-applyset", forcing on a conflict as kubectl does).
func (c *Client) writeApplySet(ctx context.Context, set ApplySet, kinds map[schema.GroupKind]*meta.RESTMapping, namespaces map[string]bool, o *writeOptions) error {
	var gks, nss []string
	for gk := range kinds {
		gks = append(gks, gk.String())
	}
	for ns := range namespaces {
		if ns != set.Namespace {
			nss = append(nss, ns)
		}
	}
	slices.Sort(gks)
	slices.Sort(nss)
	patch := metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: set.kind()},
		ObjectMeta: metav1.ObjectMeta{
			Name: set.Name, Namespace: set.Namespace,
			Labels: map[string]string{ApplySetIDLabel: set.ID()},
			Annotations: map[string]string{
				ApplySetToolingAnnotation:    set.tooling(),
				ApplySetGroupKindsAnnotation: strings.Join(gks, ","),
				ApplySetNamespacesAnnotation: strings.Join(nss, ","),
			},
		},
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("client: encode ApplySet parent: %w", err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(data); err != nil {
		return fmt.Errorf("client: encode ApplySet parent: %w", err)
	}
	tool, _, _ := strings.Cut(set.tooling(), "/")
	po := writeOptions{fieldManager: tool + "-applyset", dryRun: o.dryRun, fieldValidation: o.fieldValidation}
	_, err = c.apply(ctx, obj, &po)
	if apierrors.IsConflict(err) {
		c.log.Info("ApplySet parent fields owned by another manager; retrying with conflicts forced", "applyset", set.String(), "error", err.Error())
		force := true
		po.force = &force
		_, err = c.apply(ctx, obj, &po)
	}
	if err != nil {
		return fmt.Errorf("client: failed to update ApplySet %q: %w", set, err)
	}
	return nil
}

// prune deletes the members of the kinds and namespaces recorded before
// this apply whose uid was not applied now.
func (c *Client) prune(ctx context.Context, id string, kinds map[schema.GroupKind]*meta.RESTMapping, namespaces map[string]bool, visited map[types.UID]bool, o *writeOptions) ([]ManifestResult, error) {
	gks := make([]schema.GroupKind, 0, len(kinds))
	for gk := range kinds {
		gks = append(gks, gk)
	}
	slices.SortFunc(gks, func(a, b schema.GroupKind) int { return strings.Compare(a.String(), b.String()) })
	nss := make([]string, 0, len(namespaces))
	for ns := range namespaces {
		nss = append(nss, ns)
	}
	slices.Sort(nss)
	selector := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: map[string]string{ApplySetPartOfLabel: id}})
	del := *o
	del.propagation = nil // Background, as kubectl's apply --cascade default
	var pruned []ManifestResult
	var errs []error
	for _, gk := range gks {
		m := kinds[gk]
		scopes := []string{""}
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			scopes = nss
		}
		for _, ns := range scopes {
			list, err := c.dyn.Resource(m.Resource).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				return pruned, fmt.Errorf("client: prune: listing %v objects for pruning: %w", m.GroupVersionKind, err)
			}
			for i := range list.Items {
				item := &list.Items[i]
				if visited[item.GetUID()] {
					continue
				}
				item.SetGroupVersionKind(m.GroupVersionKind)
				r := ManifestResult{Manifest: Manifest{Source: "applyset " + id, Object: item}, DryRun: o.dryRun, Existed: true}
				t := target{gvk: m.GroupVersionKind, mapping: m, namespace: ns, name: item.GetName(), namespaced: ns != ""}
				if _, err := c.delete(ctx, t, &del); err != nil && !apierrors.IsNotFound(err) {
					r.Err = &ManifestError{Manifest: r.Manifest, Err: fmt.Errorf("pruning %s: %w", t, err), Ref: t.String()}
					errs = append(errs, r.Err)
				} else {
					r.Outcome = Pruned
				}
				pruned = append(pruned, r)
			}
		}
	}
	return pruned, errors.Join(errs...)
}
