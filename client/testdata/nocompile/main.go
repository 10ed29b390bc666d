// Command nocompile must not compile: TestMisplacedOptionsDoNotCompile
// builds it and expects a compile error on every line marked "// want:",
// naming what is wrong, and nowhere else.
package main

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/informer"
	"github.com/kubekit/kubekit/watch"
)

func main() {
	ctx := context.Background()
	var c *client.Client
	cm := &corev1.ConfigMap{}
	pod := &corev1.Pod{}

	// Options a verb does not take.
	_ = c.Get(ctx, cm, client.DryRun(true))                                                                                             // want: client.DryRun does not implement client.GetOption
	_ = c.Create(ctx, cm, client.ForceOwnership(true))                                                                                  // want: client.ForceOwnership does not implement client.CreateOption
	_ = c.Create(ctx, cm, client.LabelSelector("a=b"))                                                                                  // want: client.LabelSelector does not implement client.CreateOption
	_ = c.Update(ctx, cm, client.Recreate(true))                                                                                        // want: client.Recreate does not implement client.UpdateOption
	_ = c.Patch(ctx, cm, client.MergePatch([]byte("{}")), client.ForceOwnership(true))                                                  // want: client.ForceOwnership does not implement client.PatchOption
	_, _ = c.Apply(ctx, cm, client.GracePeriodSeconds(1))                                                                               // want: client.GracePeriodSeconds does not implement client.ApplyOption
	_, _, _ = client.ApplyConfiguration[*corev1.ConfigMap](ctx, c, applycorev1.ConfigMap("x", "default"), client.GracePeriodSeconds(1)) // want: client.GracePeriodSeconds does not implement client.ApplyOption
	_, _ = c.Status().Apply(ctx, cm, client.Recreate(true))                                                                             // want: client.Recreate does not implement client.StatusApplyOption
	_ = c.Delete(ctx, cm, client.FieldManager("x"))                                                                                     // want: client.FieldManager does not implement client.DeleteOption
	_ = c.DeleteAllOf(ctx, cm, client.ForceOwnership(true))                                                                             // want: client.ForceOwnership does not implement client.DeleteAllOfOption
	_ = c.Evict(ctx, pod, client.FieldManager("x"))                                                                                     // want: client.FieldManager does not implement client.EvictOption
	_, _ = c.ApplyManifests(ctx, nil, client.PropagationPolicy("Orphan"))                                                               // want: client.PropagationPolicy does not implement client.ApplyManifestsOption
	_, _ = c.DeleteManifests(ctx, nil, client.ForceOwnership(true))                                                                     // want: client.ForceOwnership does not implement client.DeleteManifestsOption
	_, _ = c.DeleteManifests(ctx, nil, client.Preconditions{})                                                                          // want: client.Preconditions does not implement client.DeleteManifestsOption
	_, _ = c.Diff(ctx, nil, client.PropagationPolicy("Orphan"))                                                                         // want: client.PropagationPolicy does not implement client.DiffOption
	_, _ = c.Diff(ctx, nil, client.DryRun(true))                                                                                        // want: client.DryRun does not implement client.DiffOption

	// Type arguments are pointers everywhere: a value type does not compile.
	for range client.List[corev1.Pod](ctx, c.Kubernetes().CoreV1().Pods("").List) { // want: Pod) does not satisfy client.Object
	}
	_, _ = client.Collect[corev1.Pod](ctx, c.Kubernetes().CoreV1().Pods("").List)                        // want: Pod) does not satisfy client.Object
	_, _, _ = client.ApplyConfiguration[corev1.ConfigMap](ctx, c, applycorev1.ConfigMap("x", "default")) // want: ConfigMap does not satisfy client.Object
	_, _ = watch.New[corev1.Pod](ctx, c)                                                                 // want: Pod does not satisfy "github.com/kubekit/kubekit/watch".Object
	_, _ = informer.For[corev1.Pod](ctx, nil)                                                            // want: Pod does not satisfy informer.Object
}
