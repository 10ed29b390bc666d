package client_test

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubekit/kubekit/client"
)

func ExampleClient_Apply() {
	ctx := context.Background()
	c, err := client.New() // the package's tests point $KUBECONFIG at a real API server
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	for _, color := range []string{"blue", "blue", "green"} {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "example-apply"}, // namespace: the client's
			Data:       map[string]string{"color": color},
		}
		outcome, err := c.Apply(ctx, cm, client.FieldManager("example"))
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("configmap/"+cm.Name, outcome)
	}
	err = c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "example-apply"}})
	fmt.Println("deleted:", err == nil)
	fmt.Println("deleting again:", client.IgnoreNotFound(c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "example-apply"}})))
	// Output:
	// configmap/example-apply created
	// configmap/example-apply unchanged
	// configmap/example-apply configured
	// deleted: true
	// deleting again: <nil>
}

func ExampleDecodeManifests() {
	const in = `# two documents, one of them a List
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: a, namespace: shop}}
- {apiVersion: apps/v1, kind: Deployment, metadata: {namespace: shop}}
`
	ms, err := client.DecodeManifests(context.Background(), strings.NewReader(in), "shop.yaml")
	for _, m := range ms {
		fmt.Println(m, client.KubectlName(m.Object))
	}
	fmt.Println(err)
	// Output:
	// "shop.yaml" document 1 namespace/shop
	// "shop.yaml" document 2 item 1 configmap/a
	// manifest "shop.yaml" document 2 item 2: Deployment has no metadata.name (every object needs apiVersion, kind and metadata.name)
}

func ExampleClient_ApplyManifests() {
	ctx := context.Background()
	c, err := client.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	const in = `apiVersion: v1
kind: ConfigMap
metadata: {name: example-manifest}
data: {k: v}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: example-manifest-2, namespace: no-such-namespace}
`
	ms, err := client.DecodeManifests(ctx, strings.NewReader(in), "example.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, dryRun := range []bool{true, false} {
		results, _ := c.ApplyManifests(ctx, ms, client.DryRun(dryRun))
		for _, r := range results {
			if r.Err != nil {
				fmt.Println("error:", r.Manifest, client.IgnoreNotFound(r.Err) == nil)
				continue
			}
			fmt.Println(r.Name(), r.Outcome, r.DryRun)
		}
	}
	results, err := c.DeleteManifests(ctx, ms[:1])
	fmt.Println(results[0].Name(), results[0].Outcome, err)
	// Output:
	// configmap/example-manifest created true
	// error: "example.yaml" document 2 true
	// configmap/example-manifest created false
	// error: "example.yaml" document 2 true
	// configmap/example-manifest deleted <nil>
}
