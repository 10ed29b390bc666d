package testenv_test

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubekit/kubekit/testenv"
)

// Start a control plane of its own, write an object, survive an API server
// crash, and stop without leaving a process behind.
func ExampleStart() {
	ctx := context.Background()
	env, err := testenv.Start(ctx)
	if err != nil {
		fmt.Println(err) // names where it looked for the binaries and how to get them
		return
	}
	defer func() { _ = env.Stop() }()

	cs := kubernetes.NewForConfigOrDie(env.Config())
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "greeting"}, Data: map[string]string{"hello": "world"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	if err := env.KillAPIServer(); err != nil {
		fmt.Println(err)
		return
	}
	if err := env.StartAPIServer(ctx); err != nil {
		fmt.Println(err)
		return
	}
	got, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "greeting", metav1.GetOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.Data["hello"])
	// Output: world
}
