package client

import (
	"context"
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/restmapper"
)

// RESTMapper returns a RESTMapper backed by the cached discovery client. When
// a kind or resource is not found it invalidates the discovery cache and tries
// once more, so kinds served after the first lookup (a CRD created later)
// resolve. A truly unknown kind therefore costs one discovery round-trip per
// lookup; its error still satisfies meta.IsNoMatchError.
//
// The mapper also implements meta.RESTMapperWithContext: its *WithContext
// methods (RESTMappingWithContext, ResourceForWithContext...) make their
// discovery requests with ctx, so a caller can bound and cancel them. A
// server that cannot be reached gives the connection error, not a no-match
// error.
func (c *Client) RESTMapper() meta.ResettableRESTMapper { return c.mapper }

type refreshingMapper struct {
	disc     discovery.CachedDiscoveryInterface
	deferred *restmapper.DeferredDiscoveryRESTMapper
	log      logr.Logger
	mu       sync.Mutex // serializes refreshes
}

var (
	_ meta.ResettableRESTMapper  = (*refreshingMapper)(nil)
	_ meta.RESTMapperWithContext = (*refreshingMapper)(nil)
)

func newRefreshingMapper(d discovery.CachedDiscoveryInterface, log logr.Logger) *refreshingMapper {
	m := &refreshingMapper{disc: d, log: log}
	if dc, ok := d.(discovery.CachedDiscoveryInterfaceWithContext); ok {
		m.deferred = restmapper.NewDeferredDiscoveryRESTMapperWithContext(dc)
	} else {
		m.deferred = restmapper.NewDeferredDiscoveryRESTMapper(d)
	}
	return m
}

// retry runs f and, on a no-match error, refreshes discovery and runs it again.
func retry[T any](m *refreshingMapper, what string, f func() (T, error)) (T, error) {
	v, err := f()
	if err == nil || !meta.IsNoMatchError(err) {
		return v, err
	}
	m.mu.Lock()
	m.log.V(1).Info("unknown to the cached RESTMapper, refreshing discovery", "lookup", what)
	m.disc.Invalidate()
	m.deferred.Reset()
	m.mu.Unlock()
	return f()
}

// retryCtx is retry with discovery bounded by ctx.
func retryCtx[T any](ctx context.Context, m *refreshingMapper, what string, f func(context.Context) (T, error)) (T, error) {
	if err := ctx.Err(); err != nil {
		var zero T
		return zero, err
	}
	return retry(m, what, func() (T, error) { return f(ctx) })
}

func (m *refreshingMapper) KindForWithContext(ctx context.Context, r schema.GroupVersionResource) (schema.GroupVersionKind, error) {
	return retryCtx(ctx, m, r.String(), func(ctx context.Context) (schema.GroupVersionKind, error) {
		return m.deferred.KindForWithContext(ctx, r)
	})
}

func (m *refreshingMapper) KindsForWithContext(ctx context.Context, r schema.GroupVersionResource) ([]schema.GroupVersionKind, error) {
	return retryCtx(ctx, m, r.String(), func(ctx context.Context) ([]schema.GroupVersionKind, error) {
		return m.deferred.KindsForWithContext(ctx, r)
	})
}

func (m *refreshingMapper) ResourceForWithContext(ctx context.Context, r schema.GroupVersionResource) (schema.GroupVersionResource, error) {
	return retryCtx(ctx, m, r.String(), func(ctx context.Context) (schema.GroupVersionResource, error) {
		return m.deferred.ResourceForWithContext(ctx, r)
	})
}

func (m *refreshingMapper) ResourcesForWithContext(ctx context.Context, r schema.GroupVersionResource) ([]schema.GroupVersionResource, error) {
	return retryCtx(ctx, m, r.String(), func(ctx context.Context) ([]schema.GroupVersionResource, error) {
		return m.deferred.ResourcesForWithContext(ctx, r)
	})
}

func (m *refreshingMapper) RESTMappingWithContext(ctx context.Context, gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	return retryCtx(ctx, m, gk.String(), func(ctx context.Context) (*meta.RESTMapping, error) {
		return m.deferred.RESTMappingWithContext(ctx, gk, versions...)
	})
}

func (m *refreshingMapper) RESTMappingsWithContext(ctx context.Context, gk schema.GroupKind, versions ...string) ([]*meta.RESTMapping, error) {
	return retryCtx(ctx, m, gk.String(), func(ctx context.Context) ([]*meta.RESTMapping, error) {
		return m.deferred.RESTMappingsWithContext(ctx, gk, versions...)
	})
}

func (m *refreshingMapper) ResourceSingularizerWithContext(ctx context.Context, resource string) (string, error) {
	return retryCtx(ctx, m, resource, func(ctx context.Context) (string, error) {
		return m.deferred.ResourceSingularizerWithContext(ctx, resource)
	})
}

func (m *refreshingMapper) KindFor(r schema.GroupVersionResource) (schema.GroupVersionKind, error) {
	return retry(m, r.String(), func() (schema.GroupVersionKind, error) { return m.deferred.KindFor(r) })
}

func (m *refreshingMapper) KindsFor(r schema.GroupVersionResource) ([]schema.GroupVersionKind, error) {
	return retry(m, r.String(), func() ([]schema.GroupVersionKind, error) { return m.deferred.KindsFor(r) })
}

func (m *refreshingMapper) ResourceFor(r schema.GroupVersionResource) (schema.GroupVersionResource, error) {
	return retry(m, r.String(), func() (schema.GroupVersionResource, error) { return m.deferred.ResourceFor(r) })
}

func (m *refreshingMapper) ResourcesFor(r schema.GroupVersionResource) ([]schema.GroupVersionResource, error) {
	return retry(m, r.String(), func() ([]schema.GroupVersionResource, error) { return m.deferred.ResourcesFor(r) })
}

func (m *refreshingMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	return retry(m, gk.String(), func() (*meta.RESTMapping, error) { return m.deferred.RESTMapping(gk, versions...) })
}

func (m *refreshingMapper) RESTMappings(gk schema.GroupKind, versions ...string) ([]*meta.RESTMapping, error) {
	return retry(m, gk.String(), func() ([]*meta.RESTMapping, error) { return m.deferred.RESTMappings(gk, versions...) })
}

func (m *refreshingMapper) ResourceSingularizer(resource string) (string, error) {
	return retry(m, resource, func() (string, error) { return m.deferred.ResourceSingularizer(resource) })
}

// Reset drops everything cached: discovery and mappings.
func (m *refreshingMapper) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.disc.Invalidate()
	m.deferred.Reset()
}
