package informer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubekit/kubekit/informer"
)

var widgets = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}

func widget(ns, name, app string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("example.com/v1")
	u.SetKind("Widget")
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetLabels(map[string]string{"app": app})
	u.Object["spec"] = map[string]any{"size": int64(1)}
	return u
}

func TestDynamicInformerForCRD(t *testing.T) {
	// testenv's CRD client keeps its own connections: install before the
	// goroutine snapshot.
	if err := env.InstallCRDFiles(t.Context(), "testdata/widgets-crd.yaml"); err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	verifyNoLeaks(t, c)
	ns := newNamespace(t, c)
	wi := c.Dynamic().Resource(widgets).Namespace(ns)
	for _, w := range []*unstructured.Unstructured{widget(ns, "w1", "web"), widget(ns, "w2", "db")} {
		if _, err := wi.Create(t.Context(), w, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f := newFactory(t, c, informer.WithNamespaces(ns), informer.WithDropManagedFields(true))
	// an empty version picks the server's preferred one
	inf, err := informer.ForResource(t.Context(), f, schema.GroupVersionResource{Group: "example.com", Resource: "widgets"})
	if err != nil {
		t.Fatal(err)
	}
	if inf.Resource() != widgets {
		t.Fatalf("Resource() = %v", inf.Resource())
	}
	if err := inf.AddIndex(informer.ByLabel("app")); err != nil {
		t.Fatal(err)
	}
	var rec recorder
	_, err = inf.AddHandler(informer.Handler[*unstructured.Unstructured]{
		OnAdd: func(u *unstructured.Unstructured, initial bool) {
			rec.add("%s %s/%s", map[bool]string{true: "INITIAL", false: "ADD"}[initial], u.GetNamespace(), u.GetName())
		},
		OnUpdate: func(_, u *unstructured.Unstructured) { rec.add("UPDATE %s/%s", u.GetNamespace(), u.GetName()) },
		OnDelete: func(u *unstructured.Unstructured) { rec.add("DELETE %s/%s", u.GetNamespace(), u.GetName()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.Start(t.Context())
	waitSynced(t, f)
	l := inf.Lister()
	w1, err := l.Get(ns, "w1")
	if err != nil || w1.GetLabels()["app"] != "web" || len(w1.GetManagedFields()) != 0 {
		t.Fatalf("Get w1 = %v, %v (managedFields must be dropped)", w1, err)
	}
	if size, _, _ := unstructured.NestedInt64(w1.Object, "spec", "size"); size != 1 {
		t.Fatalf("spec.size = %d", size)
	}
	_, err = l.Get(ns, "nope")
	var status apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &status) || status.Status().Details.Group != "example.com" || status.Status().Details.Kind != "widgets" {
		t.Fatalf("Get missing = %v", err)
	}

	w2, err := wi.Get(t.Context(), "w2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w2.SetLabels(map[string]string{"app": "web"})
	if _, err := wi.Update(t.Context(), w2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wi.Delete(t.Context(), "w1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := wi.Create(t.Context(), widget(ns, "w3", "web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "index follows the server", func() error {
		got, err := l.ByIndex(informer.LabelIndexName("app"), "web")
		if err != nil {
			return err
		}
		var n []string
		for _, u := range got {
			n = append(n, u.GetName())
		}
		slices.Sort(n)
		if !slices.Equal(n, []string{"w2", "w3"}) {
			return fmt.Errorf("app=web: %v", n)
		}
		return nil
	})
	eventually(t, "handler events", func() error {
		want := []string{"INITIAL " + ns + "/w1", "INITIAL " + ns + "/w2", "UPDATE " + ns + "/w2", "DELETE " + ns + "/w1", "ADD " + ns + "/w3"}
		got := rec.get()
		for _, key := range []string{"w1", "w2", "w3"} {
			var g, w []string
			for _, e := range got {
				if strings.HasSuffix(e, "/"+key) {
					g = append(g, e)
				}
			}
			for _, e := range want {
				if strings.HasSuffix(e, "/"+key) {
					w = append(w, e)
				}
			}
			if !slices.Equal(g, w) {
				return fmt.Errorf("%s: %v, want %v", key, g, w)
			}
		}
		return nil
	})
}

// notRegistered is a Go type client-go's scheme does not know.
type notRegistered struct{ corev1.Pod }

func TestBadInput(t *testing.T) {
	c := newClient(t)
	verifyNoLeaks(t, c)
	t.Run("options", func(t *testing.T) {
		identity := func(obj any) (any, error) { return obj, nil }
		tests := []struct {
			name string
			opts []informer.Option
			want string
		}{
			{"label selector", []informer.Option{informer.WithLabelSelector("app in (a")}, `WithLabelSelector("app in (a")`},
			{"field selector", []informer.Option{informer.WithFieldSelector("a==b==c")}, "WithFieldSelector"},
			{"empty namespace", []informer.Option{informer.WithNamespaces("")}, "empty namespace"},
			{"bad namespace", []informer.Option{informer.WithNamespaces("Not_A_Namespace")}, `WithNamespaces("Not_A_Namespace"): not a valid namespace name`},
			{"duplicate namespace", []informer.Option{informer.WithNamespaces("a"), informer.WithNamespaces("a")}, `"a" given twice`},
			{"negative resync", []informer.Option{informer.WithResync(-time.Second)}, "WithResync(-1s)"},
			{"negative resync for", []informer.Option{informer.WithResyncFor(schema.GroupResource{Resource: "pods"}, -time.Second)}, `WithResyncFor("pods", -1s)`},
			{"empty resync resource", []informer.Option{informer.WithResyncFor(schema.GroupResource{}, time.Second)}, "empty resource name"},
			{"two transforms", []informer.Option{informer.WithTransform(identity), informer.WithTransform(identity)}, "more than once"},
			{"nil transform", []informer.Option{informer.WithTransform(nil)}, "WithTransform(nil)"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := informer.New(c, tt.opts...)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("New: %v, want it to mention %q", err, tt.want)
				}
			})
		}
		if _, err := informer.New(nil); err == nil || !strings.Contains(err.Error(), "client.New") {
			t.Fatalf("New(nil): %v", err)
		}
	})

	f := newFactory(t, c)
	t.Run("type not in scheme", func(t *testing.T) {
		_, err := informer.For[*notRegistered](t.Context(), f)
		if err == nil || !strings.Contains(err.Error(), "not registered in client-go's scheme") || !strings.Contains(err.Error(), "ForResource") {
			t.Fatalf("For[*notRegistered]: %v", err)
		}
		_, err = informer.For[*unstructured.Unstructured](t.Context(), f)
		if err == nil || !strings.Contains(err.Error(), "use ForResource") {
			t.Fatalf("For[*unstructured.Unstructured]: %v", err)
		}
	})
	t.Run("unknown resource", func(t *testing.T) {
		_, err := informer.ForResource(t.Context(), f, schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "nopes"})
		if err == nil || !strings.Contains(err.Error(), "nopes.example.com/v1") || !strings.Contains(err.Error(), "not served") {
			t.Fatalf("ForResource(nopes): %v", err)
		}
		_, err = informer.ForResource(t.Context(), f, schema.GroupVersionResource{})
		if err == nil || !strings.Contains(err.Error(), "empty resource name") {
			t.Fatalf("ForResource({}): %v", err)
		}
	})
	pods, err := informer.For[*corev1.Pod](t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("unknown index", func(t *testing.T) {
		_, err := pods.Lister().ByIndex("label:nope", "x")
		if !errors.Is(err, informer.ErrUnknownIndex) || !strings.Contains(err.Error(), `"label:nope"`) || !strings.Contains(err.Error(), "[namespace]") {
			t.Fatalf("ByIndex(unknown): %v", err)
		}
		if err := pods.AddIndex(informer.Index{Name: "x"}); err == nil {
			t.Fatal("AddIndex without Func: no error")
		}
	})
	t.Run("lifecycle", func(t *testing.T) {
		if err := f.WaitForSync(t.Context()); !errors.Is(err, informer.ErrNotStarted) {
			t.Fatalf("WaitForSync before Start: %v", err)
		}
		if err := pods.WaitForSync(t.Context()); !errors.Is(err, informer.ErrNotStarted) {
			t.Fatalf("Informer.WaitForSync before Start: %v", err)
		}
		g := newFactory(t, c)
		g.Shutdown()
		if _, err := informer.For[*corev1.Pod](t.Context(), g); !errors.Is(err, informer.ErrShutdown) {
			t.Fatalf("For after Shutdown: %v", err)
		}
		g.Shutdown() // idempotent
	})
	t.Run("unsupported field selector", func(t *testing.T) {
		g := newFactory(t, c, informer.WithFieldSelector("spec.nope=x"))
		if _, err := informer.For[*corev1.Pod](t.Context(), g); err != nil {
			t.Fatal(err)
		}
		g.Start(t.Context())
		// A 400 cannot be fixed by retrying: the wait ends at once, without
		// a deadline, with the API error.
		start := time.Now()
		err := g.WaitForSync(context.WithoutCancel(t.Context()))
		if err == nil || !strings.Contains(err.Error(), "pods (all namespaces)") || !strings.Contains(err.Error(), "spec.nope") || !apierrors.IsBadRequest(err) {
			t.Fatalf("WaitForSync = %v, want a BadRequest naming pods and the field", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("WaitForSync took %v", d)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		g := newFactory(t, c)
		if _, err := informer.For[*corev1.Pod](t.Context(), g); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		g.Start(ctx)
		if err := g.WaitForSync(t.Context()); err == nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitForSync after Start(cancelled): %v", err)
		}
	})
}
