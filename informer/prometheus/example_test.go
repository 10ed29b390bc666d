package prometheus_test

import (
	"context"
	"fmt"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/informer"
	informerprom "github.com/kubekit/kubekit/informer/prometheus"
)

// Informers of one factory report client-go's metrics and their sync state
// to a registry of the program's own.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New() // $KUBECONFIG, or in-cluster
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	reg := prom.NewRegistry()
	m, err := informerprom.New(reg)
	if err != nil {
		fmt.Println(err)
		return
	}
	f, err := informer.New(c, informer.WithNamespaces("kube-system"), informer.WithMetrics("example", m))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Shutdown()
	cms, err := informer.For[*corev1.ConfigMap](ctx, f)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := m.Watch("example", cms); err != nil {
		fmt.Println(err)
		return
	}
	f.Start(ctx)
	if err := f.WaitForSync(ctx); err != nil {
		fmt.Println(err)
		return
	}

	mfs, err := reg.Gather()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "informer_synced":
			fmt.Println(mf.GetName(), mf.GetMetric()[0].GetGauge().GetValue())
		case "informer_store_resource_version":
			fmt.Println(mf.GetName(), "set:", mf.GetMetric()[0].GetGauge().GetValue() > 0)
		}
	}
	// Output:
	// informer_store_resource_version set: true
	// informer_synced 1
}
