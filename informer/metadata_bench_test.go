package informer_test

import (
	"encoding/json"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/kubekit/kubekit/informer"
)

// BenchmarkMetadataMemory measures the heap a synced informer holds per Pod:
// the full typed informer ([informer.For]) against the metadata-only one
// ([informer.ForMetadata]), both from the same 5,000 realistic Pods (see
// realisticPod), decoded from a JSON list as from a list response: a PodList
// for the typed one, a PartialObjectMetadataList (what the API server sends
// a metadata client) for the other. "ratio" compares the defaults (For keeps
// managedFields, ForMetadata drops them; target: at most 0.2); the other two
// ratios compare the same setting on both sides.
func BenchmarkMetadataMemory(b *testing.B) {
	const n = 5000
	tmpl := realisticPod(b)
	pods := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, ListMeta: metav1.ListMeta{ResourceVersion: "1"}}
	metas := metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadataList", APIVersion: "meta.k8s.io/v1"}, ListMeta: metav1.ListMeta{ResourceVersion: "1"}}
	for i := range n {
		p := tmpl.DeepCopy()
		p.Name = fmt.Sprintf("web-%d", i)
		p.UID = types.UID(fmt.Sprintf("8f1c2a7e-0000-4000-8000-%012d", i))
		pods.Items = append(pods.Items, *p)
		metas.Items = append(metas.Items, metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"}, ObjectMeta: p.ObjectMeta})
	}
	podBody, err := json.Marshal(pods)
	if err != nil {
		b.Fatal(err)
	}
	metaBody, err := json.Marshal(metas)
	if err != nil {
		b.Fatal(err)
	}
	pods.Items, metas.Items = nil, nil
	var full, meta, fullDropped, metaKept float64
	for b.Loop() {
		full += heapPerObject(b, podBody, n, nil)
		meta += heapPerMetadata(b, metaBody, n, informer.DropManagedFields) // ForMetadata's default
		fullDropped += heapPerObject(b, podBody, n, informer.DropManagedFields)
		metaKept += heapPerMetadata(b, metaBody, n, nil)
	}
	N := float64(b.N)
	b.ReportMetric(full/N, "full-B/pod")
	b.ReportMetric(meta/N, "metadata-B/pod")
	b.ReportMetric(meta/full, "ratio")
	// The same settings on both sides: managedFields dropped, and kept.
	b.ReportMetric(meta/fullDropped, "ratio-both-dropped")
	b.ReportMetric(metaKept/full, "ratio-both-kept")
}

// heapPerMetadata is heapPerObject for a metadata-only informer over body
// (a PartialObjectMetadataList).
func heapPerMetadata(b *testing.B, body []byte, n int, transform cache.TransformFunc) float64 {
	return heapPer(b, listWatchAdapter[metav1.PartialObjectMetadataList](body), &metav1.PartialObjectMetadata{}, n, transform)
}
