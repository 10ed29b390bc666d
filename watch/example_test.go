package watch_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/watch"
)

// Watch ConfigMaps in one namespace, resuming from a checkpoint file.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New() // $KUBECONFIG
	if err != nil {
		fmt.Println(err)
		return
	}
	ns := "example-watch"
	_, _ = c.Kubernetes().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	_, _ = c.Kubernetes().CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{})

	dir, _ := os.MkdirTemp("", "watch")
	defer os.RemoveAll(dir)
	cp, err := watch.NewFileCheckpoint(filepath.Join(dir, "configmaps.json"))
	if err != nil {
		fmt.Println(err)
		return
	}
	w, err := watch.New[*corev1.ConfigMap](ctx, c, watch.WithNamespace(ns), watch.WithCheckpoint(cp))
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	err = w.Run(runCtx, func(ctx context.Context, e watch.Event[*corev1.ConfigMap]) error {
		fmt.Println(e.Type, e.Object.Name, "initial:", e.Initial)
		stop() // a real program runs until interrupted
		return nil
	})
	fmt.Println("Run:", err)
	// Output:
	// ADDED settings initial: true
	// Run: <nil>
}

// Watch any resource, custom resources included, as unstructured objects.
func ExampleNewForResource() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	w, err := watch.NewForResource(ctx, c, schema.GroupVersionResource{Resource: "namespaces"},
		watch.WithLabelSelector("kubernetes.io/metadata.name=kube-system"))
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	err = w.Run(runCtx, func(ctx context.Context, e watch.Event[*unstructured.Unstructured]) error {
		fmt.Println(e.Type, e.Object.GetKind(), e.Object.GetName())
		stop()
		return nil
	})
	fmt.Println("Run:", err)
	// Output:
	// ADDED Namespace kube-system
	// Run: <nil>
}

// A corrupt checkpoint is an error that names the file, never a silent
// start from "now".
func ExampleFileCheckpoint() {
	dir, _ := os.MkdirTemp("", "watch")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "cp.json")
	_ = os.WriteFile(path, []byte("{garbage"), 0o600)
	cp, _ := watch.NewFileCheckpoint(path)
	_, err := cp.Load(context.Background())
	fmt.Println(errors.Is(err, watch.ErrBadCheckpoint))

	_ = cp.Save(context.Background(), &watch.State{Resource: "configmaps", ResourceVersion: "42"})
	s, err := cp.Load(context.Background())
	fmt.Println(s.ResourceVersion, err)
	// Output:
	// true
	// 42 <nil>
}
