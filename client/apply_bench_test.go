package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/kubekit/kubekit/client"
)

// BenchmarkApply re-applies 100 unchanged ConfigMaps per iteration three
// ways and reports objects/s for each plus kubekit's ratio to client-go's
// typed Apply. kubekit's Apply reads each object before applying it to tell
// created, configured and unchanged apart, so expect about half of client-go's
// throughput for the one-object call: the price of a truthful outcome.
func BenchmarkApply(b *testing.B) {
	c, err := client.New(client.WithKubeconfig(env.KubeconfigPath()), client.WithRateLimit(false))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := b.Context()
	const n = 100
	ns := "bench-apply"
	if _, err := c.Apply(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	name := func(i int) string { return fmt.Sprintf("cm-%03d", i) }
	var ms []client.Manifest
	for i := range n {
		u := unstructuredCM(ns, name(i), map[string]any{"index": fmt.Sprint(i)})
		ms = append(ms, client.Manifest{Source: "bench", Index: i + 1, Object: u})
	}
	if _, err := c.ApplyManifests(ctx, ms); err != nil {
		b.Fatal(err)
	}
	cms := c.Kubernetes().CoreV1().ConfigMaps(ns)
	variants := []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"kubekit-Apply", func(ctx context.Context) error {
			for i := range n {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name(i)}, Data: map[string]string{"index": fmt.Sprint(i)}}
				if o, err := c.Apply(ctx, cm); err != nil || o != client.Unchanged {
					return fmt.Errorf("apply %s: %s, %w", name(i), o, err)
				}
			}
			return nil
		}},
		{"kubekit-ApplyManifests", func(ctx context.Context) error {
			rs, err := c.ApplyManifests(ctx, ms)
			if err == nil && rs[n-1].Outcome != client.Unchanged {
				err = fmt.Errorf("outcome %s", rs[n-1].Outcome)
			}
			return err
		}},
		{"client-go-Apply", func(ctx context.Context) error {
			for i := range n {
				ac := corev1ac.ConfigMap(name(i), ns).WithData(map[string]string{"index": fmt.Sprint(i)})
				if _, err := cms.Apply(ctx, ac, metav1.ApplyOptions{FieldManager: client.DefaultFieldManager}); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	elapsed := make([]time.Duration, len(variants))
	b.ResetTimer()
	for iter := range b.N {
		for k := range variants {
			i := (iter + k) % len(variants)
			start := time.Now()
			if err := variants[i].run(ctx); err != nil {
				b.Fatalf("%s: %v", variants[i].name, err)
			}
			elapsed[i] += time.Since(start)
		}
	}
	rate := make([]float64, len(variants))
	for i, v := range variants {
		rate[i] = float64(n*b.N) / elapsed[i].Seconds()
		b.ReportMetric(rate[i], v.name+"-objects/s")
	}
	b.ReportMetric(rate[0]/rate[2], "Apply/client-go-ratio")
	b.ReportMetric(rate[1]/rate[2], "ApplyManifests/client-go-ratio")
}

// BenchmarkApplyManifestsBundle re-applies a 200-object bundle (ConfigMaps
// and Secrets, unchanged: GitOps' steady state) per iteration with
// ApplyManifests at its default Concurrency and with Concurrency(1), against
// client-go's typed Apply in a sequential loop, in the same run, and reports
// objects/s and the ratios. ApplyManifests sends two requests per object (a
// read and the apply, for a truthful outcome), client-go one. Client-side
// throttling is off, as in BenchmarkApply: at the default QPS (50) both are
// bound by the rate limiter, which ApplyManifests honours.
func BenchmarkApplyManifestsBundle(b *testing.B) {
	c, err := client.New(client.WithKubeconfig(env.KubeconfigPath()), client.WithRateLimit(false))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := b.Context()
	const n = 200
	ns := "bench-bundle"
	if _, err := c.Apply(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	name := func(i int) string { return fmt.Sprintf("obj-%03d", i) }
	var ms []client.Manifest
	for i := range n {
		u := unstructuredCM(ns, name(i), map[string]any{"index": fmt.Sprint(i)})
		if i%2 == 1 {
			u.SetKind("Secret")
			u.Object["stringData"] = u.Object["data"]
			delete(u.Object, "data")
		}
		ms = append(ms, client.Manifest{Source: "bench", Index: i + 1, Object: u})
	}
	if _, err := c.ApplyManifests(ctx, ms); err != nil {
		b.Fatal(err)
	}
	kube := c.Kubernetes().CoreV1()
	opts := metav1.ApplyOptions{FieldManager: client.DefaultFieldManager}
	manifests := func(extra ...client.ApplyManifestsOption) func(context.Context) error {
		return func(ctx context.Context) error {
			rs, err := c.ApplyManifests(ctx, ms, extra...)
			if err == nil && rs[n-1].Outcome != client.Unchanged {
				err = fmt.Errorf("outcome %s", rs[n-1].Outcome)
			}
			return err
		}
	}
	variants := []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"ApplyManifests", manifests()},
		{"ApplyManifests-Concurrency1", manifests(client.Concurrency(1))},
		{"client-go-Apply", func(ctx context.Context) error {
			for i := range n {
				data := map[string]string{"index": fmt.Sprint(i)}
				var err error
				if i%2 == 1 {
					_, err = kube.Secrets(ns).Apply(ctx, corev1ac.Secret(name(i), ns).WithStringData(data), opts)
				} else {
					_, err = kube.ConfigMaps(ns).Apply(ctx, corev1ac.ConfigMap(name(i), ns).WithData(data), opts)
				}
				if err != nil {
					return err
				}
			}
			return nil
		}},
	}
	elapsed := make([]time.Duration, len(variants))
	b.ResetTimer()
	for iter := range b.N {
		for k := range variants {
			i := (iter + k) % len(variants)
			start := time.Now()
			if err := variants[i].run(ctx); err != nil {
				b.Fatalf("%s: %v", variants[i].name, err)
			}
			elapsed[i] += time.Since(start)
		}
	}
	rate := make([]float64, len(variants))
	for i, v := range variants {
		rate[i] = float64(n*b.N) / elapsed[i].Seconds()
		b.ReportMetric(rate[i], v.name+"-objects/s")
	}
	b.ReportMetric(rate[0]/rate[2], "ApplyManifests/client-go-ratio")
	b.ReportMetric(rate[1]/rate[2], "Concurrency1/client-go-ratio")
}
