package watch_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubekit/kubekit/watch"
)

func TestNewErrors(t *testing.T) {
	c := newClient(t, env.Config())
	verifyNoLeaks(t, c)
	for _, tt := range []struct {
		name string
		new  func() error
		want string
	}{
		{"nil client", func() error { _, err := watch.New[*corev1.Pod](t.Context(), nil); return err }, "client.New"},
		{"unstructured via New", func() error { _, err := watch.New[*unstructured.Unstructured](t.Context(), c); return err }, "NewForResource"},
		{"bad namespace", func() error {
			_, err := watch.New[*corev1.Pod](t.Context(), c, watch.WithNamespace("Bad_NS"))
			return err
		}, "WithNamespace"},
		{"namespace on cluster-scoped", func() error {
			_, err := watch.New[*corev1.Namespace](t.Context(), c, watch.WithNamespace("x"))
			return err
		}, "cluster-scoped"},
		{"bad label selector", func() error {
			_, err := watch.New[*corev1.Pod](t.Context(), c, watch.WithLabelSelector("a in ("))
			return err
		}, "WithLabelSelector"},
		{"bad field selector", func() error {
			_, err := watch.New[*corev1.Pod](t.Context(), c, watch.WithFieldSelector("a"))
			return err
		}, "WithFieldSelector"},
		{"nil checkpoint", func() error { _, err := watch.New[*corev1.Pod](t.Context(), c, watch.WithCheckpoint(nil)); return err }, "WithCheckpoint(nil)"},
		{"typed-nil checkpoint", func() error {
			_, err := watch.New[*corev1.Pod](t.Context(), c, watch.WithCheckpoint((*watch.FileCheckpoint)(nil)))
			return err
		}, "WithCheckpoint(*watch.FileCheckpoint(nil)): the checkpoint is a nil *watch.FileCheckpoint"},
		{"bad save retry timeout", func() error {
			_, err := watch.New[*corev1.Pod](t.Context(), c, watch.WithSaveRetryTimeout(0))
			return err
		}, "WithSaveRetryTimeout(0s)"},
		{"nil option", func() error { _, err := watch.New[*corev1.Pod](t.Context(), c, nil); return err }, "nil Option"},
		{"bad backoff", func() error {
			_, err := watch.New[*corev1.Pod](t.Context(), c, watch.WithBackoff(wait.Backoff{Factor: 2}))
			return err
		}, "WithBackoff"},
		{"bad batch", func() error {
			_, err := watch.New[*corev1.Pod](t.Context(), c, watch.WithCheckpointBatch(0, time.Second))
			return err
		}, "WithCheckpointBatch"},
		{"bad page size", func() error { _, err := watch.New[*corev1.Pod](t.Context(), c, watch.WithPageSize(0)); return err }, "WithPageSize"},
		{"bad healthy period", func() error { _, err := watch.New[*corev1.Pod](t.Context(), c, watch.WithHealthyPeriod(0)); return err }, "WithHealthyPeriod"},
		{"unknown resource", func() error {
			_, err := watch.NewForResource(t.Context(), c, schema.GroupVersionResource{Group: "example.com", Resource: "nopes"})
			return err
		}, "nopes.example.com"},
		{"empty resource", func() error {
			_, err := watch.NewForResource(t.Context(), c, schema.GroupVersionResource{})
			return err
		}, "empty resource"},
		{"empty file path", func() error { _, err := watch.NewFileCheckpoint(""); return err }, "file path"},
		{"missing directory", func() error { _, err := watch.NewFileCheckpoint("/nonexistent/x/cp.json"); return err }, "create it first"},
		{"bad configmap name", func() error {
			_, err := watch.NewConfigMapCheckpoint(kube(t, env.Config()), "ns", "Bad_Name")
			return err
		}, "Bad_Name"},
		{"configmap options together", func() error {
			_, err := watch.NewConfigMapCheckpoint(kube(t, env.Config()), "ns", strings.Repeat("n", 250), watch.WithMaxShards(-1), watch.WithWriterIdentity(" "))
			if err == nil || !strings.Contains(err.Error(), "WithMaxShards(-1)") || !strings.Contains(err.Error(), "WithWriterIdentity") {
				return fmt.Errorf("not every mistake named: %v", err)
			}
			return err
		}, "at most 239"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.new()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestRunContract(t *testing.T) {
	c := newClient(t, env.Config())
	verifyNoLeaks(t, c)
	w, err := watch.New[*corev1.ConfigMap](t.Context(), c, watch.WithNamespace("default"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "handler") {
		t.Errorf("Run(nil handler) = %v", err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	noop := func(context.Context, watch.Event[*corev1.ConfigMap]) error { return nil }
	if err := w.Run(cancelled, noop); err != nil {
		t.Errorf("Run(cancelled) = %v, want nil: a cancelled ctx is a clean stop", err)
	}
	started := make(chan struct{})
	stop := start(t, w, func(context.Context, watch.Event[*corev1.ConfigMap]) error {
		select {
		case <-started:
		default:
			close(started)
		}
		return nil
	})
	if _, err := kube(t, env.Config()).CoreV1().ConfigMaps("default").Create(t.Context(), cm("default", "run-contract", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := w.Run(t.Context(), noop); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second concurrent Run = %v, want an 'already running' error", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// Custom resources through NewForResource: events carry unstructured
// objects, synthetic deletes carry a tombstone with apiVersion and kind.
func TestCustomResource(t *testing.T) {
	ctx := t.Context()
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "widgets.example.com"},
		"spec": map[string]any{
			"group": "example.com",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"scope": "Namespaced",
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
	if err := env.InstallCRDs(ctx, crd); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, env.Config())
	verifyNoLeaks(t, c)
	gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	ri := c.Dynamic().Resource(gvr).Namespace("default")
	widget := func(name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": map[string]any{"name": name}}}
		return u
	}
	if _, err := ri.Create(ctx, widget("w1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := watch.NewForResource(t.Context(), c, schema.GroupVersionResource{Group: "example.com", Resource: "widgets"}, watch.WithNamespace("default"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	done := make(chan struct{})
	stop := start(t, w, func(_ context.Context, e watch.Event[*unstructured.Unstructured]) error {
		got = append(got, string(e.Type)+" "+e.Object.GetKind()+" "+e.Object.GetName())
		if len(got) == 3 {
			close(done)
		}
		return nil
	})
	if _, err := ri.Create(ctx, widget("w2"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ri.Delete(ctx, "w1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("no 3 events in 60s")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	want := []string{"ADDED Widget w1", "ADDED Widget w2", "DELETED Widget w1"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events %q, want %q", got, want)
	}
}
