package client_test

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubekit/kubekit/client"
)

// New finds the configuration like kubectl does ($KUBECONFIG here, set by
// this package's TestMain to a real test API server).
func ExampleNew() {
	c, err := client.New(
		client.WithTimeout(30*time.Second),
		client.WithUserAgent("example/1.0"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := c.ServerVersion(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("server", v.GitVersion, "namespace", c.Namespace())
	// Output: server v1.37.2 namespace default
}

// RESTClientFor replaces the tutorial's hand-made RESTClient setup.
func ExampleClient_RESTClientFor() {
	c, err := client.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	rc, err := c.RESTClientFor(corev1.SchemeGroupVersion)
	if err != nil {
		fmt.Println(err)
		return
	}
	var ns corev1.Namespace
	err = rc.Get().Resource("namespaces").Name("kube-system").
		VersionedParams(&metav1.GetOptions{}, metav1.ParameterCodec).
		Do(context.Background()).Into(&ns)
	fmt.Println(ns.Name, ns.Status.Phase, err)
	// Output: kube-system Active <nil>
}

// List streams any list call page by page; items come typed, errors come
// last.
func ExampleList() {
	c, err := client.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	namespaces := c.Kubernetes().CoreV1().Namespaces()
	for ns, err := range client.List[*corev1.Namespace](ctx, namespaces.List,
		client.PageSize(1), client.LabelSelector("kubernetes.io/metadata.name in (default,kube-system)")) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(ns.Name)
	}
	n, err := client.Count(ctx, namespaces.List, client.LabelSelector("kubernetes.io/metadata.name=default"))
	fmt.Println("count:", n, err)
	// Output:
	// default
	// kube-system
	// count: 1 <nil>
}
