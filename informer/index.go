package informer

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

// Names of the ready-made indexes.
const (
	// IndexNamespace indexes by namespace. Every informer has it.
	IndexNamespace = cache.NamespaceIndex
	// IndexOwnerUID indexes by the UIDs in metadata.ownerReferences; see
	// [ByOwnerUID].
	IndexOwnerUID = "owner"
	// IndexNodeName indexes Pods by spec.nodeName; see [PodsByNodeName].
	IndexNodeName = "node"
	// labelIndexPrefix + key names a [ByLabel] index.
	labelIndexPrefix = "label:"
)

// Index is a named index function for [Informer.AddIndex]. Query it with
// [Lister.ByIndex](Name, value).
type Index struct {
	// Name is what Lister.ByIndex and Informer.AddIndex know the index by.
	Name string
	// Func returns the values an object is indexed under. It must not
	// return an error: client-go panics on one.
	Func cache.IndexFunc
}

func defaultIndexers() cache.Indexers {
	return cache.Indexers{IndexNamespace: cache.MetaNamespaceIndexFunc}
}

// IndexFunc makes a typed index: fn gets each cached object as a T and
// returns the values to index it under (none: not indexed). Objects that are
// not T are not indexed. fn cannot fail: client-go panics on index errors.
func IndexFunc[T Object](name string, fn func(obj T) []string) Index {
	return Index{Name: name, Func: func(obj any) ([]string, error) {
		o, ok := obj.(T)
		if !ok {
			return nil, nil
		}
		return fn(o), nil
	}}
}

// LabelIndexName is the name of the [ByLabel] index for a label key:
// "label:" + key.
func LabelIndexName(key string) string { return labelIndexPrefix + key }

// ByLabel indexes objects by the value of label key; objects without the
// label are not indexed. Query with ByIndex(LabelIndexName(key), value).
func ByLabel(key string) Index {
	return Index{Name: LabelIndexName(key), Func: func(obj any) ([]string, error) {
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil, nil
		}
		if v, ok := m.GetLabels()[key]; ok {
			return []string{v}, nil
		}
		return nil, nil
	}}
}

// ByOwnerUID indexes objects by the UID of each owner reference, so a
// controller finds the children of an object with
// ByIndex(IndexOwnerUID, string(parent.UID)).
func ByOwnerUID() Index {
	return Index{Name: IndexOwnerUID, Func: func(obj any) ([]string, error) {
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil, nil
		}
		refs := m.GetOwnerReferences()
		if len(refs) == 0 {
			return nil, nil
		}
		uids := make([]string, len(refs))
		for i, r := range refs {
			uids[i] = string(r.UID)
		}
		return uids, nil
	}}
}

// PodsByNodeName indexes Pods (typed or unstructured) by spec.nodeName;
// unscheduled Pods are not indexed. Query with ByIndex(IndexNodeName, node).
func PodsByNodeName() Index {
	return Index{Name: IndexNodeName, Func: func(obj any) ([]string, error) {
		var node string
		switch p := obj.(type) {
		case *corev1.Pod:
			node = p.Spec.NodeName
		case *unstructured.Unstructured:
			node, _, _ = unstructured.NestedString(p.Object, "spec", "nodeName")
		}
		if node == "" {
			return nil, nil
		}
		return []string{node}, nil
	}}
}
