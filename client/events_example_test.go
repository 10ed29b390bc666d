package client_test

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubekit/kubekit/client"
)

// Record an event about an object; Shutdown writes what is queued before
// the program exits.
func ExampleClient_StartEventRecorder() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	cm, err := c.Kubernetes().CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "example-events"}}, metav1.CreateOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	rec, err := c.StartEventRecorder(ctx, "example.com/mirror")
	if err != nil {
		fmt.Println(err)
		return
	}
	rec.Eventf(cm, nil, corev1.EventTypeNormal, "Mirrored", "Create", "mirrored to %s/%s", "backup", cm.Name)
	if err := rec.Shutdown(ctx); err != nil {
		fmt.Println(err)
		return
	}
	evs, err := c.Kubernetes().EventsV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "regarding.name=example-events"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range evs.Items {
		fmt.Println(e.Type, e.Reason, e.Note)
	}
	// Output:
	// Normal Mirrored mirrored to backup/example-events
}
