package prometheus_test

import (
	"context"
	"fmt"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/watch"
	watchprom "github.com/kubekit/kubekit/watch/prometheus"
)

// Export a watch's metrics (serve reg with promhttp.HandlerFor).
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	_, _ = c.Kubernetes().CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "example-metrics", Labels: map[string]string{"example": "metrics"}}}, metav1.CreateOptions{})

	reg := prom.NewRegistry()
	m, err := watchprom.New(reg)
	if err != nil {
		fmt.Println(err)
		return
	}
	w, err := watch.New[*corev1.ConfigMap](ctx, c, watch.WithNamespace("default"), watch.WithLabelSelector("example=metrics"), watch.WithMetrics(m))
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	err = w.Run(runCtx, func(_ context.Context, e watch.Event[*corev1.ConfigMap]) error {
		fmt.Println(e.Type, e.Object.Name)
		stop() // an example stops at the first event
		return nil
	})
	fmt.Println("Run:", err)
	fmt.Println("event series:", testutil.CollectAndCount(reg, "kubekit_watch_events_total"))
	// Output:
	// ADDED example-metrics
	// Run: <nil>
	// event series: 1
}
