package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// StatusWriter writes the status subresource of objects: what controllers
// report, kept apart from the spec that users write. Get it from
// [Client.Status]. A kind without a status subresource (a ConfigMap, a CRD
// that does not declare one) answers 404 Not Found.
type StatusWriter struct{ c *Client }

// Status returns the writer for the status subresource, as
// controller-runtime's client.Status():
//
//	d.Status.ObservedGeneration = d.Generation
//	err := c.Status().Update(ctx, d)
func (c *Client) Status() *StatusWriter { return &StatusWriter{c} }

// Update replaces obj's status (PUT .../status) and fills obj with the
// server's answer; the server ignores changes to anything but status. A
// resourceVersion in obj makes it conditional (409 Conflict if the object
// changed since), which is what a controller wants: it computed the status
// from what it read.
func (w *StatusWriter) Update(ctx context.Context, obj Object, opts ...UpdateOption) error {
	o, err := newWriteOptions(opts)
	if err != nil {
		return err
	}
	return w.c.write(ctx, "update status", "PUT", "status", obj, &o, true)
}

// Patch patches obj's status with p (PATCH .../status) and fills obj with
// the result; only obj's kind, name and namespace are used. The patch is
// written as for the whole object ({"status": {...}} for a merge patch).
func (w *StatusWriter) Patch(ctx context.Context, obj Object, p Patch, opts ...PatchOption) error {
	o, err := newWriteOptions(opts)
	if err != nil {
		return err
	}
	return w.c.patch(ctx, "Status().Patch", "patch status", "status", obj, p, &o)
}

// Apply applies obj's status server-side (PATCH .../status with an apply
// patch) under the field manager (kubelet and controllers each own their
// conditions this way), fills obj with the result and reports configured or
// unchanged from the resourceVersion, as [Client.Apply]. obj should carry
// apiVersion, kind, name, namespace and only the status fields this manager
// owns. The object must exist: a status apply does not create it.
func (w *StatusWriter) Apply(ctx context.Context, obj Object, opts ...StatusApplyOption) (Outcome, error) {
	o, err := newWriteOptions(opts)
	if err != nil {
		return "", err
	}
	t, err := w.c.locate(ctx, obj, &o, true)
	if err != nil {
		return "", err
	}
	data, err := encode(obj, t.gvk, true)
	if err != nil {
		return "", err
	}
	before, _, err := do(ctx, w.c.request("GET", t, true), "apply status: read", t)
	if err != nil {
		return "", err
	}
	r := o.params(w.c.request("PATCH", t, true).SubResource("status"), true).SetHeader("Content-Type", string(types.ApplyYAMLPatchType)).Body(data)
	after, _, err := do(ctx, r, "apply status", t)
	if err != nil {
		return "", err
	}
	if err := decodeInto(obj, after); err != nil {
		return "", err
	}
	if (!o.dryRun && resourceVersion(before) == resourceVersion(after)) || sameObject(before, after) {
		return Unchanged, nil
	}
	return Configured, nil
}

// GetScale reads the scale subresource of obj (a Deployment, StatefulSet,
// ReplicaSet, or a custom resource that declares one): desired and current
// replicas and the label selector. Only obj's kind, name and namespace are
// used.
func (c *Client) GetScale(ctx context.Context, obj Object, opts ...GetOption) (*autoscalingv1.Scale, error) {
	o, err := newWriteOptions(opts)
	if err != nil {
		return nil, err
	}
	t, err := c.resolve(ctx, obj, &o, true)
	if err != nil {
		return nil, err
	}
	body, _, err := do(ctx, c.request("GET", t, true).SubResource("scale"), "get scale", t)
	if err != nil {
		return nil, err
	}
	s := &autoscalingv1.Scale{}
	if err := json.Unmarshal(body, s); err != nil {
		return nil, fmt.Errorf("client: get scale %s: decode: %w", t, err)
	}
	return s, nil
}

// Scale sets the desired replicas of obj through its scale subresource
// (kubectl scale) and returns the new Scale. Only obj's kind, name and
// namespace are used. The write is unconditional, as kubectl's without
// --resource-version.
func (c *Client) Scale(ctx context.Context, obj Object, replicas int32, opts ...PatchOption) (*autoscalingv1.Scale, error) {
	if replicas < 0 {
		return nil, fmt.Errorf("client: Scale(%d): replicas must be >= 0; pass the desired number of replicas (0 scales to zero)", replicas)
	}
	o, err := newWriteOptions(opts)
	if err != nil {
		return nil, err
	}
	t, err := c.resolve(ctx, obj, &o, true)
	if err != nil {
		return nil, err
	}
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
	r := o.params(c.request("PATCH", t, true).SubResource("scale"), false).SetHeader("Content-Type", string(types.MergePatchType)).Body(patch)
	body, _, err := do(ctx, r, "scale", t)
	if err != nil {
		return nil, err
	}
	s := &autoscalingv1.Scale{}
	if err := json.Unmarshal(body, s); err != nil {
		return nil, fmt.Errorf("client: scale %s: decode: %w", t, err)
	}
	return s, nil
}

// Evict asks the API server to evict the Pod named by pod's metadata
// (POST .../pods/NAME/eviction, what kubectl drain does): unlike a delete it
// honours PodDisruptionBudgets, and answers 429 Too Many Requests when a
// budget forbids it now (apierrors.IsTooManyRequests: retry later).
// [DryRun] and [GracePeriodSeconds] apply.
func (c *Client) Evict(ctx context.Context, pod *corev1.Pod, opts ...EvictOption) error {
	if pod == nil {
		return fmt.Errorf("client: Evict: the Pod is nil; pass the Pod to evict, with its name and namespace")
	}
	o, err := newWriteOptions(opts)
	if err != nil {
		return err
	}
	t, err := c.resolve(ctx, pod, &o, true)
	if err != nil {
		return err
	}
	del := &metav1.DeleteOptions{GracePeriodSeconds: o.gracePeriod}
	if o.dryRun {
		del.DryRun = []string{metav1.DryRunAll}
	}
	ev := policyv1.Eviction{
		TypeMeta:      metav1.TypeMeta{APIVersion: "policy/v1", Kind: "Eviction"},
		ObjectMeta:    metav1.ObjectMeta{Name: t.name, Namespace: t.namespace},
		DeleteOptions: del,
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	var code int
	_, code, err = do(ctx, c.request("POST", t, true).SubResource("eviction").SetHeader("Content-Type", "application/json").Body(data), "evict", t)
	if err != nil {
		return err
	}
	if code != http.StatusCreated && code != http.StatusOK {
		return fmt.Errorf("client: evict %s: unexpected status %d", t, code)
	}
	return nil
}

// checkPatch rejects patch types the patch verbs do not take.
func checkPatch(fn string, p Patch) error {
	switch p.Type {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
	case types.ApplyYAMLPatchType, types.ApplyCBORPatchType:
		return fmt.Errorf("client: %s: use Apply for server-side apply", fn)
	default:
		return fmt.Errorf("client: %s: unknown patch type %q; build the patch with JSONPatch, MergePatch or StrategicMergePatch", fn, p.Type)
	}
	if len(p.Data) == 0 {
		return fmt.Errorf("client: %s: empty patch data", fn)
	}
	return nil
}
