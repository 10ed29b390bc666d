package client

import (
	"context"
	"fmt"
	"net/http"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// This file is the one path from a Go type, a kind or a resource name to
// the REST mapping and client that serve it: the writes here, watch and
// informer all use it.

// MappingFor returns the REST mapping (resource, kind, scope) that serves
// obj's kind: apiVersion and kind for unstructured objects, client-go's
// scheme for typed ones (see [GVKFor]). See [Client.MappingForKind] for the
// errors.
func (c *Client) MappingFor(ctx context.Context, obj runtime.Object) (*meta.RESTMapping, error) {
	gvk, err := GVKFor(obj)
	if err != nil {
		return nil, err
	}
	return c.MappingForKind(ctx, gvk)
}

// MappingForKind returns the REST mapping that serves gvk, asking discovery
// (cached, refreshed once for a kind it does not know, so a CRD created
// later resolves) with ctx. A kind the server does not serve is an error that
// satisfies meta.IsNoMatchError; a server that cannot be reached is an error
// that says so and wraps the connection error, never "not served".
func (c *Client) MappingForKind(ctx context.Context, gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	if gvk.Kind == "" || gvk.Version == "" {
		return nil, fmt.Errorf("client: MappingForKind(%v): the kind needs a version and a kind, e.g. apps/v1, Kind=Deployment", gvk)
	}
	m, err := c.mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, c.discoveryError("kind "+gvk.String(), "a CRD not installed yet?", err)
	}
	return m, nil
}

// MappingForResource returns the REST mapping of a resource given by name:
// the plural ("deployments"), the singular or the kind in lower case, in
// gvr.Group; an empty gvr.Version picks the server's preferred version.
// Errors as [Client.MappingForKind].
func (c *Client) MappingForResource(ctx context.Context, gvr schema.GroupVersionResource) (*meta.RESTMapping, error) {
	if gvr.Resource == "" {
		return nil, fmt.Errorf("client: MappingForResource(%v): the resource name is empty; pass the plural name, e.g. {Group: \"apps\", Resource: \"deployments\"}", gvr)
	}
	what := "resource " + FormatResource(gvr)
	hint := "check it is the plural, lower-case name and that the CRD is installed"
	full, err := c.mapper.ResourceForWithContext(ctx, gvr)
	if err != nil {
		return nil, c.discoveryError(what, hint, err)
	}
	gvk, err := c.mapper.KindForWithContext(ctx, full)
	if err != nil {
		return nil, c.discoveryError(what, hint, err)
	}
	m, err := c.mapper.RESTMappingWithContext(ctx, gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, c.discoveryError(what, hint, err)
	}
	return m, nil
}

// discoveryError tells "not served" from "could not ask".
func (c *Client) discoveryError(what, hint string, err error) error {
	if meta.IsNoMatchError(err) {
		return fmt.Errorf("client: %s is not served by the API server at %s (%s): %w", what, c.cfg.Host, hint, err)
	}
	return fmt.Errorf("client: cannot ask the API server at %s about %s (discovery failed; check the server is reachable and the kubeconfig points at it): %w", c.cfg.Host, what, err)
}

// StreamingRESTClientFor is [Client.RESTClientFor] without the request
// timeout ([WithTimeout]), for requests that last: watches and the informers
// built on them. It shares the client's connections and rate limiter.
func (c *Client) StreamingRESTClientFor(gv schema.GroupVersion) (*rest.RESTClient, error) {
	cfg, hc := c.StreamingConfig()
	return restClientFor("StreamingRESTClientFor", cfg, hc, gv)
}

func restClientFor(fn string, cfg *rest.Config, hc *http.Client, gv schema.GroupVersion) (*rest.RESTClient, error) {
	if gv.Version == "" {
		return nil, fmt.Errorf("client: %s(%q): the group version needs a version, e.g. corev1.SchemeGroupVersion", fn, gv.String())
	}
	cfg = rest.CopyConfig(cfg)
	cfg.GroupVersion = &gv
	cfg.APIPath = "/apis"
	if gv.Group == "" {
		cfg.APIPath = "/api"
	}
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rc, err := rest.RESTClientForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("client: %s(%s): %w", fn, gv, err)
	}
	return rc, nil
}

// FormatResource names a resource as kubectl does, "deployments.apps", with
// the version after a slash when there is one: "deployments.apps/v1",
// "pods/v1".
func FormatResource(gvr schema.GroupVersionResource) string {
	s := gvr.Resource
	if gvr.Group != "" {
		s += "." + gvr.Group
	}
	if gvr.Version != "" {
		s += "/" + gvr.Version
	}
	return s
}
