package leader_test

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/informer"
	"github.com/kubekit/kubekit/leader"
	"github.com/kubekit/kubekit/queue"
)

// The whole program leads: fn is everything the program does. A second
// replica started with the same Lease would wait here until this one stops.
func ExampleRun() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New() // $KUBECONFIG, or in-cluster
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	err = leader.Run(ctx, c, "default", "example-run", func(ctx context.Context) error {
		fmt.Println("leading")
		// The real work runs here until ctx is done, e.g. a resumable watch:
		//	return w.Run(ctx, handler)
		return nil // done: Run releases the Lease and returns nil
	}, leader.WithIdentity("replica-a"))
	fmt.Println("Run:", err)
	// Output:
	// leading
	// Run: <nil>
}

// Informers warm on every replica, only the leader reconciles: the cache
// syncs before the campaign, and fn runs the queue's workers.
func ExampleRun_informerAndQueue() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	_, _ = c.Kubernetes().CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "example-leader"}}, metav1.CreateOptions{})

	f, err := informer.New(c, informer.WithNamespaces("default"))
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
	q, err := queue.New[string]()
	if err != nil {
		fmt.Println(err)
		return
	}
	// Every replica fills the queue; only the leader drains it.
	if _, err := cms.AddHandler(informer.Handler[*corev1.ConfigMap]{
		OnAdd: func(cm *corev1.ConfigMap, _ bool) { q.Add(cache.MetaObjectToName(cm).String()) },
	}); err != nil {
		fmt.Println(err)
		return
	}
	f.Start(ctx)
	if err := f.WaitForSync(ctx); err != nil {
		fmt.Println(err)
		return
	}

	err = leader.Run(ctx, c, "default", "example-controller", func(ctx context.Context) error {
		ctx, stop := context.WithCancel(ctx)
		return q.Run(ctx, 2, func(ctx context.Context, key string) (queue.Result, error) {
			if key == "default/example-leader" {
				cm, err := cms.Lister().Get("default", "example-leader")
				if err != nil {
					return queue.Result{}, err
				}
				fmt.Println("reconciled", cm.Name)
				stop() // an example stops here; a controller runs until ctx is done
			}
			return queue.Result{}, nil
		})
	}, leader.WithIdentity("replica-a"))
	fmt.Println("Run:", err)
	// Output:
	// reconciled example-leader
	// Run: <nil>
}
