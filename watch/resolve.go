package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubekit/kubekit/client"
)

// The client's RESTMapper takes no context, so New and NewForResource ask
// discovery themselves: the one or two requests they need, bounded by ctx,
// and a server that cannot be reached says so instead of "not served".

// kindMapping finds the resource that serves gvk.
func kindMapping(ctx context.Context, c *client.Client, gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	l, err := discoverResources(ctx, c, gvk.GroupVersion(), gvk.Kind)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, fmt.Errorf("kind %s is not served by the API server at %s: %w", gvk, c.Config().Host,
			&meta.NoKindMatchError{GroupKind: gvk.GroupKind(), SearchedVersions: []string{gvk.Version}})
	}
	for _, r := range l.APIResources {
		if r.Kind == gvk.Kind && !strings.Contains(r.Name, "/") {
			return mapping(gvk.GroupVersion().WithResource(r.Name), r)
		}
	}
	return nil, fmt.Errorf("kind %s is not served by the API server at %s: %w", gvk, c.Config().Host,
		&meta.NoKindMatchError{GroupKind: gvk.GroupKind(), SearchedVersions: []string{gvk.Version}})
}

// resourceMapping finds gvr (plural or singular name; an empty version is
// the group's preferred one) and its kind.
func resourceMapping(ctx context.Context, c *client.Client, gvr schema.GroupVersionResource) (*meta.RESTMapping, error) {
	notServed := func() error {
		return fmt.Errorf("resource not served by the API server at %s (check it is the plural, lower-case name and that the CRD is installed): %w",
			c.Config().Host, &meta.NoResourceMatchError{PartialResource: gvr})
	}
	gv := gvr.GroupVersion()
	if gv.Version == "" {
		v, err := preferredVersion(ctx, c, gv.Group)
		if err != nil {
			return nil, err
		}
		if v == "" {
			return nil, notServed()
		}
		gv.Version = v
	}
	l, err := discoverResources(ctx, c, gv, gvr.Resource)
	if err != nil {
		return nil, err
	}
	if l != nil {
		name := strings.ToLower(gvr.Resource)
		for _, r := range l.APIResources {
			if !strings.Contains(r.Name, "/") && (r.Name == name || r.SingularName == name || strings.ToLower(r.Kind) == name) {
				return mapping(gv.WithResource(r.Name), r)
			}
		}
	}
	return nil, notServed()
}

func mapping(gvr schema.GroupVersionResource, r metav1.APIResource) (*meta.RESTMapping, error) {
	if !slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "watch") {
		return nil, fmt.Errorf("resource %s does not support list and watch (verbs %v); watch another resource", gvrString(gvr), r.Verbs)
	}
	m := &meta.RESTMapping{Resource: gvr, GroupVersionKind: gvr.GroupVersion().WithKind(r.Kind), Scope: meta.RESTScopeRoot}
	if r.Namespaced {
		m.Scope = meta.RESTScopeNamespace
	}
	return m, nil
}

// discoverResources returns the resources of gv, or nil when the server
// does not serve gv.
func discoverResources(ctx context.Context, c *client.Client, gv schema.GroupVersion, what string) (*metav1.APIResourceList, error) {
	path := "/apis/" + gv.Group + "/" + gv.Version
	if gv.Group == "" {
		path = "/api/" + gv.Version
	}
	var l metav1.APIResourceList
	found, err := discoveryGet(ctx, c, path, what, &l)
	if !found {
		return nil, err
	}
	return &l, err
}

// preferredVersion returns the group's preferred version, "" when the
// server does not serve the group.
func preferredVersion(ctx context.Context, c *client.Client, group string) (string, error) {
	if group == "" {
		return "v1", nil
	}
	var g metav1.APIGroup
	found, err := discoveryGet(ctx, c, "/apis/"+group, "group "+group, &g)
	if !found || err != nil {
		return "", err
	}
	return g.PreferredVersion.Version, nil
}

// discoveryGet reads a discovery document into v; found is false on 404.
func discoveryGet(ctx context.Context, c *client.Client, path, what string, v any) (found bool, err error) {
	b, err := c.Discovery().RESTClient().Get().AbsPath(path).SetHeader("Accept", "application/json").DoRaw(ctx)
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil && ctx.Err() != nil:
		return false, fmt.Errorf("looking up %s: %w", what, ctx.Err())
	case err != nil:
		return false, fmt.Errorf("cannot ask the API server at %s about %s (GET %s): %w; check that the server is up and reachable and that the kubeconfig points at it",
			c.Config().Host, what, path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("the API server at %s answered GET %s with a bad discovery document: %w", c.Config().Host, path, err)
	}
	return true, nil
}
