package informer_test

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/informer"
)

// exampleNamespace creates a namespace (with its default ServiceAccount,
// which a cluster without controller-manager lacks) for an example.
func exampleNamespace(ctx context.Context, c *client.Client, name string) {
	_, _ = c.Kubernetes().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	_, _ = c.Kubernetes().CoreV1().ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
}

// A typed informer for Pods in one namespace: wait for the cache, then read
// it with the lister and an index.
func ExampleFor() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New() // $KUBECONFIG
	if err != nil {
		fmt.Println(err)
		return
	}
	exampleNamespace(ctx, c, "example-for")
	_, _ = c.Kubernetes().CoreV1().Pods("example-for").Create(ctx, pod("example-for", "web-0", map[string]string{"app": "web"}), metav1.CreateOptions{})

	f, err := informer.New(c, informer.WithNamespaces("example-for"), informer.WithDropManagedFields(true))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Shutdown()
	pods, err := informer.For[*corev1.Pod](ctx, f)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := pods.AddIndex(informer.ByLabel("app")); err != nil {
		fmt.Println(err)
		return
	}
	f.Start(ctx)
	if err := f.WaitForSync(ctx); err != nil {
		fmt.Println(err)
		return
	}
	p, err := pods.Lister().Get("example-for", "web-0")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Name, p.Labels["app"], len(p.ManagedFields))
	web, _ := pods.Lister().ByIndex(informer.LabelIndexName("app"), "web")
	fmt.Println(len(web))
	_, err = pods.Lister().Get("example-for", "nope")
	fmt.Println(err)
	// Output:
	// web-0 web 0
	// 1
	// pods "nope" not found
}

// Typed handlers: OnDelete gets the Pod even when client-go only has a
// tombstone.
func ExampleInformer_AddHandler() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	exampleNamespace(ctx, c, "example-handler")
	f, err := informer.New(c, informer.WithNamespaces("example-handler"))
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
	events := make(chan string, 10)
	reg, err := cms.AddHandler(informer.Handler[*corev1.ConfigMap]{
		OnAdd: func(cm *corev1.ConfigMap, initial bool) {
			if !initial {
				events <- "ADD " + cm.Name
			}
		},
		OnDelete: func(cm *corev1.ConfigMap) { events <- "DELETE " + cm.Name },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = reg.Remove() }()
	f.Start(ctx)
	if err := f.WaitForSync(ctx); err != nil {
		fmt.Println(err)
		return
	}
	api := c.Kubernetes().CoreV1().ConfigMaps("example-handler")
	_, _ = api.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{})
	_ = api.Delete(ctx, "settings", metav1.DeleteOptions{})
	fmt.Println(<-events)
	fmt.Println(<-events)
	// Output:
	// ADD settings
	// DELETE settings
}

// A dynamic informer works for any served resource, custom ones included.
func ExampleForResource() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	f, err := informer.New(c, informer.WithLabelSelector("kubernetes.io/metadata.name=default"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Shutdown()
	nss, err := informer.ForResource(ctx, f, schema.GroupVersionResource{Version: "v1", Resource: "namespaces"})
	if err != nil {
		fmt.Println(err)
		return
	}
	f.Start(ctx)
	if err := f.WaitForSync(ctx); err != nil {
		fmt.Println(err)
		return
	}
	all, _ := nss.Lister().List(labels.Everything())
	for _, u := range all {
		fmt.Println(u.GetKind(), u.GetName())
	}
	// Output:
	// Namespace default
}

// DropManagedFields can be used on its own, e.g. inside a larger transform.
func ExampleDropManagedFields() {
	u := &unstructured.Unstructured{}
	u.SetName("x")
	u.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}})
	out, _ := informer.DropManagedFields(u)
	fmt.Println(out.(*unstructured.Unstructured).GetManagedFields() == nil)
	// Output: true
}
