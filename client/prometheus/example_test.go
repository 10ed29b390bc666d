package prometheus_test

import (
	"context"
	"fmt"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kubekit/kubekit/client"
	clientprom "github.com/kubekit/kubekit/client/prometheus"
)

// Count every request the program's clients send (serve reg with
// promhttp.HandlerFor(reg, promhttp.HandlerOpts{})).
func ExampleRegister() {
	reg := prom.NewRegistry()
	if err := clientprom.Register(reg); err != nil {
		fmt.Println(err)
		return
	}
	c, err := client.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	if _, err := c.ServerVersion(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("requests counted:", testutil.CollectAndCount(reg, "rest_client_requests_total") > 0)
	// Output:
	// requests counted: true
}
