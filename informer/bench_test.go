package informer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/informer"
)

// realisticPod creates one Pod on the real API server the way a cluster
// does: the ReplicaSet controller's full, defaulted template applied with
// server-side apply as "kube-controller-manager", its status written by
// "kubelet", a label added by "kubectl label". The server records one
// managedFields entry per manager; the returned Pod carries them.
func realisticPod(b *testing.B) *corev1.Pod {
	b.Helper()
	realistic.once.Do(func() { realistic.pod, realistic.err = createRealisticPod(b) })
	if realistic.err != nil {
		b.Fatal(realistic.err)
	}
	return realistic.pod.DeepCopy()
}

// realistic is the one Pod realisticPod creates per test binary: the
// benchmarks that use it share it.
var realistic struct {
	once sync.Once
	pod  *corev1.Pod
	err  error
}

func createRealisticPod(b *testing.B) (*corev1.Pod, error) {
	ctx := b.Context()
	c, err := client.New(client.WithRESTConfig(env.Config()), client.WithRateLimit(false))
	if err != nil {
		return nil, err
	}
	ns := "bench-managed-fields"
	_, _ = c.Kubernetes().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	_, _ = c.Kubernetes().CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	pods := c.Kubernetes().CoreV1().Pods(ns)
	cfg := applycorev1.Pod("web-0", ns).
		WithLabels(map[string]string{"app": "web", "tier": "frontend", "version": "v1.2.3"}).
		WithAnnotations(map[string]string{"example.com/owner": "team-a"}).
		WithSpec(applycorev1.PodSpec().
			WithAutomountServiceAccountToken(false).
			WithContainers(
				applycorev1.Container().WithName("web").WithImage("registry.example.com/web:1.2.3").
					WithPorts(applycorev1.ContainerPort().WithName("http").WithContainerPort(8080)).
					WithEnv(applycorev1.EnvVar().WithName("MODE").WithValue("production"), applycorev1.EnvVar().WithName("LOG_LEVEL").WithValue("info")).
					WithResources(applycorev1.ResourceRequirements().WithRequests(corev1.ResourceList{"cpu": resource.MustParse("100m"), "memory": resource.MustParse("128Mi")})).
					WithReadinessProbe(applycorev1.Probe().WithHTTPGet(applycorev1.HTTPGetAction().WithPath("/healthz").WithPort(intstr.FromInt32(8080)))),
				applycorev1.Container().WithName("sidecar").WithImage("registry.example.com/proxy:0.9").
					WithPorts(applycorev1.ContainerPort().WithName("admin").WithContainerPort(9901)),
			))
	// A ReplicaSet controller sends the whole, already defaulted, template:
	// get the defaults from a dry run, then apply them all.
	dry, err := pods.Apply(ctx, cfg, metav1.ApplyOptions{FieldManager: "kube-controller-manager", Force: true, DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return nil, err
	}
	full := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, Spec: dry.Spec}
	full.Name, full.Namespace, full.Labels, full.Annotations = dry.Name, dry.Namespace, dry.Labels, dry.Annotations
	full.GenerateName = "web-5d8f7c9b6-"
	full.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d8f7c9b6", UID: "0d6c8d1e-5f0a-4b7e-9c3b-2f1e4a6b8c9d", Controller: ptrTo(true), BlockOwnerDeletion: ptrTo(true)}}
	patch, err := json.Marshal(full)
	if err != nil {
		return nil, err
	}
	p, err := pods.Patch(ctx, "web-0", types.ApplyPatchType, patch, metav1.PatchOptions{FieldManager: "kube-controller-manager", Force: ptrTo(true)})
	if err != nil {
		return nil, err
	}
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP, p.Status.HostIP = "10.0.0.12", "192.168.1.4"
	p.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.12"}}
	p.Status.StartTime = &now
	for _, ct := range []corev1.PodConditionType{"PodReadyToStartContainers", corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, corev1.PodScheduled} {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: ct, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	for _, name := range []string{"web", "sidecar"} {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: name, Ready: true, Image: "registry.example.com/" + name, ImageID: "registry.example.com/" + name + "@sha256:0123456789abcdef",
			ContainerID: "containerd://0123456789abcdef", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	if p, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{FieldManager: "kubelet"}); err != nil {
		return nil, err
	}
	p.Labels["team"] = "checkout"
	if p, err = pods.Update(ctx, p, metav1.UpdateOptions{FieldManager: "kubectl-label"}); err != nil {
		return nil, err
	}
	if len(p.ManagedFields) < 3 {
		return nil, fmt.Errorf("want 3 managedFields entries, got %d", len(p.ManagedFields))
	}
	return p, nil
}

// noWatchList is a ListWatch the reflector lists then watches: the fake
// does not speak the watch-list protocol.
type noWatchList struct{ *cache.ListWatch }

func (noWatchList) IsWatchListSemanticsUnSupported() bool { return true }

// listWatchAdapter serves a fixed list of type L (a PodList, a
// PartialObjectMetadataList...), decoded from JSON on every List as a
// response body would be, and a watch that never sends anything.
func listWatchAdapter[L any, PL interface {
	*L
	kruntime.Object
}](body []byte) cache.ListerWatcher {
	return noWatchList{&cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (kruntime.Object, error) {
			l := PL(new(L))
			err := json.Unmarshal(body, l)
			return l, err
		},
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) { return watch.NewFake(), nil },
	}}
}

// BenchmarkManagedFieldsMemory measures the heap a synced informer holds per
// Pod, without and with the managedFields transform. The 5,000 Pods are
// built in memory from one Pod that the real API server gave three
// managedFields entries (server-side apply by kubectl, a status update by
// kubelet, a label by a controller; see realisticPod): names and UIDs
// differ, the rest is copied. They are decoded from one JSON PodList inside
// a client-go SharedIndexInformer, as from a list response, so the dropped
// fields are allocated and then become garbage as they would in a real
// informer. Metrics: heap bytes per cached Pod for each variant and their
// ratio (target: at most 0.7).
func BenchmarkManagedFieldsMemory(b *testing.B) {
	const n = 5000
	tmpl := realisticPod(b)
	list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, ListMeta: metav1.ListMeta{ResourceVersion: "1"}}
	for i := range n {
		p := tmpl.DeepCopy()
		p.Name = fmt.Sprintf("web-%d", i)
		p.UID = types.UID(fmt.Sprintf("8f1c2a7e-0000-4000-8000-%012d", i))
		list.Items = append(list.Items, *p)
	}
	body, err := json.Marshal(list)
	if err != nil {
		b.Fatal(err)
	}
	list.Items = nil
	var plain, dropped float64
	for b.Loop() {
		plain += heapPerObject(b, body, n, nil)
		dropped += heapPerObject(b, body, n, informer.DropManagedFields)
	}
	plain /= float64(b.N)
	dropped /= float64(b.N)
	b.ReportMetric(plain, "default-B/pod")
	b.ReportMetric(dropped, "dropped-B/pod")
	b.ReportMetric(dropped/plain, "ratio")
	b.ReportMetric(float64(len(tmpl.ManagedFields)), "managers")
}

// heapPerObject syncs a Pod informer over body (a PodList) and returns the
// live heap it added, per object.
func heapPerObject(b *testing.B, body []byte, n int, transform cache.TransformFunc) float64 {
	return heapPer(b, listWatchAdapter[corev1.PodList](body), &corev1.Pod{}, n, transform)
}

// heapPer syncs an informer of example's type over lw and returns the live
// heap it added, per object.
func heapPer(b *testing.B, lw cache.ListerWatcher, example kruntime.Object, n int, transform cache.TransformFunc) float64 {
	b.Helper()
	before := liveHeap()
	sii := cache.NewSharedIndexInformer(lw, example, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	if transform != nil {
		if err := sii.SetTransform(transform); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(b.Context())
	var wg sync.WaitGroup
	wg.Go(func() { sii.RunWithContext(ctx) })
	if !cache.WaitForCacheSync(ctx.Done(), sii.HasSynced) || len(sii.GetIndexer().ListKeys()) != n {
		b.Fatalf("not synced: %d objects", len(sii.GetIndexer().ListKeys()))
	}
	after := liveHeap()
	runtime.KeepAlive(sii)
	cancel()
	wg.Wait()
	return float64(after-before) / float64(n)
}

func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func ptrTo[T any](v T) *T { return &v }
