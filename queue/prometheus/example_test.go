package prometheus_test

import (
	"fmt"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kubekit/kubekit/queue"
	queueprom "github.com/kubekit/kubekit/queue/prometheus"
)

// Export a queue's metrics to a Prometheus registry (serve it with
// promhttp.HandlerFor(reg, promhttp.HandlerOpts{})).
func ExampleNew() {
	reg := prom.NewRegistry()
	p, err := queueprom.New(reg)
	if err != nil {
		panic(err)
	}
	q, err := queue.New[string](queue.WithName("configmaps"), queue.WithMetricsProvider(p))
	if err != nil {
		panic(err)
	}
	defer q.ShutDown()
	q.Add("default/a")
	q.Add("default/b")
	fmt.Println("series:", testutil.CollectAndCount(reg, "workqueue_depth"))
	// Output:
	// series: 1
}
