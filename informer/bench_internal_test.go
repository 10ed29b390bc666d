package informer

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// BenchmarkListerGet compares the typed Lister.Get with what plain
// client-go code does: build the "namespace/name" key, GetByKey on the
// informer's indexer, type-assert. Both run interleaved in the same loop
// over 5,000 cached Pods; the metrics are ns per lookup for each and their
// ratio (target: at most 1.1).
func BenchmarkListerGet(b *testing.B) {
	const n = 5000
	sii := cache.NewSharedIndexInformer(&cache.ListWatch{}, &corev1.Pod{}, 0, defaultIndexers())
	for i := range n {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns-%d", i%10), Name: fmt.Sprintf("pod-%d", i)}}
		if err := sii.GetIndexer().Add(p); err != nil {
			b.Fatal(err)
		}
	}
	lister := testInformer(sii).Lister()
	indexer := sii.GetIndexer()
	nss := make([]string, n)
	names := make([]string, n)
	for i := range n {
		nss[i], names[i] = fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("pod-%d", i)
	}
	const batch = 1000
	var kubekit, clientgo time.Duration
	var lookups int
	b.ReportAllocs()
	i := 0
	runKubekit := func(i int) time.Duration {
		start := time.Now()
		for j := range batch {
			k := (i + j) % n
			p, err := lister.Get(nss[k], names[k])
			if err != nil || p.Name != names[k] {
				b.Fatal(p, err)
			}
		}
		return time.Since(start)
	}
	runClientGo := func(i int) time.Duration {
		start := time.Now()
		for j := range batch {
			k := (i + j) % n
			obj, exists, err := indexer.GetByKey(nss[k] + "/" + names[k])
			if err != nil || !exists {
				b.Fatal(err)
			}
			if p := obj.(*corev1.Pod); p.Name != names[k] {
				b.Fatal(p)
			}
		}
		return time.Since(start)
	}
	for b.Loop() {
		// alternate which goes first so neither always gets the warm cache
		if (i/batch)%2 == 0 {
			kubekit += runKubekit(i)
			clientgo += runClientGo(i)
		} else {
			clientgo += runClientGo(i)
			kubekit += runKubekit(i)
		}
		i += batch
		lookups += batch
	}
	b.ReportMetric(float64(kubekit.Nanoseconds())/float64(lookups), "kubekit-ns/get")
	b.ReportMetric(float64(clientgo.Nanoseconds())/float64(lookups), "client-go-ns/get")
	b.ReportMetric(float64(kubekit)/float64(clientgo), "ratio")
}
