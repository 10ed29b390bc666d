package client_test

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubekit/kubekit/client"
)

var (
	benchOnce sync.Once
	benchNS   = "bench-list-20000"
)

// heapPeak samples live heap bytes every 500µs while f runs and returns the
// peak above the level measured right before f (after a GC).
func heapPeak(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base := read()
	var peak uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(500 * time.Microsecond)
		defer t.Stop()
		for {
			if v := read(); v > peak {
				peak = v
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	if v := read(); v > peak {
		peak = v
	}
	if peak < base {
		return 0
	}
	return peak - base
}

// BenchmarkList lists 20,000 ConfigMaps three ways in every iteration and
// reports each one's objects/s and peak heap, plus the ratios the design
// targets: kubekit's iterator against a hand-written Limit/Continue loop
// (throughput, target >= 0.95) and against one unpaginated List (peak heap,
// target <= 0.2).
func BenchmarkList(b *testing.B) {
	c, err := client.New(client.WithKubeconfig(env.KubeconfigPath()), client.WithRateLimit(false))
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	const n = 20000
	benchOnce.Do(func() { fill(b, ctx, c.Kubernetes(), benchNS, n) })
	cms := c.Kubernetes().CoreV1().ConfigMaps(benchNS)

	var sink int
	variants := []struct {
		name string
		run  func(ctx context.Context) (int, error)
	}{
		{"kubekit", func(ctx context.Context) (int, error) {
			count := 0
			for cm, err := range client.List[*corev1.ConfigMap](ctx, cms.List) {
				if err != nil {
					return count, err
				}
				sink += len(cm.Name)
				count++
			}
			return count, nil
		}},
		{"loop", func(ctx context.Context) (int, error) {
			count := 0
			opts := metav1.ListOptions{Limit: client.DefaultPageSize}
			for {
				page, err := cms.List(ctx, opts)
				if err != nil {
					return count, err
				}
				for i := range page.Items {
					sink += len(page.Items[i].Name)
					count++
				}
				if page.Continue == "" {
					return count, nil
				}
				opts.Continue = page.Continue
			}
		}},
		{"unpaginated", func(ctx context.Context) (int, error) {
			list, err := cms.List(ctx, metav1.ListOptions{})
			if err != nil {
				return 0, err
			}
			for i := range list.Items {
				sink += len(list.Items[i].Name)
			}
			return len(list.Items), nil
		}},
	}
	elapsed := make([]time.Duration, len(variants))
	peaks := make([]uint64, len(variants))
	b.ResetTimer()
	for iter := range b.N {
		// Rotate the order so no variant always runs first or last.
		for k := range variants {
			i := (iter + k) % len(variants)
			v := variants[i]
			var count int
			var err error
			start := time.Now()
			peak := heapPeak(func() { count, err = v.run(ctx) })
			elapsed[i] += time.Since(start)
			if peak > peaks[i] {
				peaks[i] = peak
			}
			if err != nil || count != n {
				b.Fatalf("%s: listed %d of %d: %v", v.name, count, n, err)
			}
		}
	}
	objPerSec := make([]float64, len(variants))
	for i, v := range variants {
		objPerSec[i] = float64(n*b.N) / elapsed[i].Seconds()
		b.ReportMetric(objPerSec[i], v.name+"-obj/s")
		b.ReportMetric(float64(peaks[i])/(1<<20), v.name+"-peak-MiB")
	}
	b.ReportMetric(objPerSec[0]/objPerSec[1], "throughput-vs-loop")
	b.ReportMetric(float64(peaks[0])/float64(peaks[2]), "heap-vs-unpaginated")
	b.ReportMetric(0, "ns/op") // the per-variant metrics above are the result
	_ = sink
}
