package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// ApplyConfiguration applies ac, one of client-go's apply configurations
// (k8s.io/client-go/applyconfigurations/...), server-side, and returns the
// object the server stored as a PT together with the outcome, exactly as
// [Client.Apply] reports it (created, configured, unchanged):
//
//	cm, outcome, err := client.ApplyConfiguration[*corev1.ConfigMap](ctx, c,
//		applycorev1.ConfigMap("settings", "prod").WithData(map[string]string{"mode": "fast"}))
//
// Prefer apply configurations to typed structs for server-side apply: they
// send only the fields you set. A typed struct sends its zero values too
// (replicas: 0, an empty strategy...) wherever its JSON tags lack omitempty,
// and the field manager then owns, and keeps resetting, fields it never
// meant to set. Typed structs stay fine for Create and Update, and for
// Apply of objects you build in full.
//
// PT must be the typed pointer of ac's kind (*corev1.ConfigMap for a
// ConfigMapApplyConfiguration) or *unstructured.Unstructured; a mismatch is
// an error before anything is sent. Apply's options apply.
func ApplyConfiguration[PT Object](ctx context.Context, c *Client, ac runtime.ApplyConfiguration, opts ...ApplyOption) (PT, Outcome, error) {
	var zero PT
	if c == nil {
		return zero, "", errors.New("client: ApplyConfiguration: the client is nil; build one with client.New")
	}
	if ac == nil || (reflect.ValueOf(ac).Kind() == reflect.Pointer && reflect.ValueOf(ac).IsNil()) {
		return zero, "", errors.New("client: ApplyConfiguration: the apply configuration is nil; build one, e.g. applycorev1.ConfigMap(name, namespace)")
	}
	o, err := newWriteOptions(opts)
	if err != nil {
		return zero, "", err
	}
	data, err := json.Marshal(ac)
	if err != nil {
		return zero, "", fmt.Errorf("client: ApplyConfiguration: encode %T: %w", ac, err)
	}
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(data, &u.Object); err != nil {
		return zero, "", fmt.Errorf("client: ApplyConfiguration: encode %T: %w", ac, err)
	}
	gvk := u.GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return zero, "", fmt.Errorf("client: ApplyConfiguration: %T has no apiVersion or kind; build it with its constructor (applycorev1.ConfigMap(name, namespace)), not a struct literal", ac)
	}
	out := reflect.New(reflect.TypeOf(zero).Elem()).Interface().(PT)
	typed := true
	if _, ok := any(out).(*unstructured.Unstructured); ok {
		typed = false
	} else {
		want, err := GVKFor(out)
		if err != nil {
			return zero, "", err
		}
		if want != gvk {
			return zero, "", fmt.Errorf("client: ApplyConfiguration[%T]: the apply configuration is a %s, not a %s; use the type parameter of its kind", out, gvk, want)
		}
	}
	outcome, err := c.apply(ctx, u, &o)
	if err != nil {
		return zero, "", err
	}
	if !typed {
		return any(u).(PT), outcome, nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		return zero, "", fmt.Errorf("client: ApplyConfiguration: decode the server's answer into %T: %w", out, err)
	}
	return out, outcome, nil
}
