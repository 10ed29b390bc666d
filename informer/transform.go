package informer

import "k8s.io/apimachinery/pkg/api/meta"

// DropManagedFields is a cache.TransformFunc that removes
// metadata.managedFields from typed and unstructured objects, in place.
// Other values pass through unchanged. Use it through
// [WithDropManagedFields], or call it from your own transform.
func DropManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(Unwrap(obj)); err == nil && m.GetManagedFields() != nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
