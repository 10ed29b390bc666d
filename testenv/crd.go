package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRDFiles reads CustomResourceDefinitions from YAML or JSON files
// (several documents per file allowed) and installs them like InstallCRDs.
func (e *Env) InstallCRDFiles(ctx context.Context, paths ...string) error {
	var objs []runtime.Object
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("testenv: read CRD file: %w", err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
		for i := 0; ; i++ {
			var u unstructured.Unstructured
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				_ = f.Close()
				return fmt.Errorf("testenv: %s document %d: %w", p, i, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			objs = append(objs, &u)
		}
		_ = f.Close()
	}
	return e.InstallCRDs(ctx, objs...)
}

// InstallCRDs creates (or updates) CustomResourceDefinitions, given as
// *apiextensionsv1.CustomResourceDefinition, unstructured or any object that
// converts to one, and waits until each is Established.
func (e *Env) InstallCRDs(ctx context.Context, crds ...runtime.Object) error {
	dyn, err := dynamic.NewForConfig(e.Config())
	if err != nil {
		return err
	}
	names := make([]string, 0, len(crds))
	for i, obj := range crds {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
			if err != nil {
				return fmt.Errorf("testenv: CRD %d: %w", i, err)
			}
			u = &unstructured.Unstructured{Object: m}
		}
		u = u.DeepCopy()
		if u.GetKind() == "" {
			u.SetAPIVersion("apiextensions.k8s.io/v1")
			u.SetKind("CustomResourceDefinition")
		}
		if u.GetKind() != "CustomResourceDefinition" {
			return fmt.Errorf("testenv: object %d is a %s, not a CustomResourceDefinition", i, u.GetKind())
		}
		_, err := dyn.Resource(crdGVR).Create(ctx, u, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			cur, gerr := dyn.Resource(crdGVR).Get(ctx, u.GetName(), metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			u.SetResourceVersion(cur.GetResourceVersion())
			_, err = dyn.Resource(crdGVR).Update(ctx, u, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("testenv: install CRD %q: %w", u.GetName(), err)
		}
		names = append(names, u.GetName())
	}
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			u, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("testenv: CRD %q not Established: %w", name, err)
		}
	}
	return nil
}
