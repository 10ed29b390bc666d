package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubekit/kubekit/internal/exampletest"
	"github.com/kubekit/kubekit/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.RunMain(m, func(e *testenv.Env) { env = e }))
}

func namespace(t *testing.T, k kubernetes.Interface, name string) {
	t.Helper()
	if _, err := k.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.CoreV1().ServiceAccounts(name).Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func createPod(t *testing.T, k kubernetes.Interface, ns, name, app, node string) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "pause"}}},
	}
	if _, err := k.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// start runs the program in the background against the test API server.
func start(t *testing.T, args ...string) (*exampletest.Output, func() error) {
	t.Helper()
	return exampletest.Start(t, run, append([]string{"--kubeconfig", env.KubeconfigPath()}, args...)...)
}

func waitLines(t *testing.T, out *exampletest.Output, want func([]string) bool) []string {
	t.Helper()
	return exampletest.WaitLines(t, out, want)
}

func TestEventsAndIndex(t *testing.T) {
	k := exampletest.Kube(t, env.Config())
	ns1, ns2, other := "ex-inf-a", "ex-inf-b", "ex-inf-other"
	for _, ns := range []string{ns1, ns2, other} {
		namespace(t, k, ns)
	}
	createPod(t, k, ns1, "web-1", "web", "node-1")
	createPod(t, k, ns1, "db-1", "db", "")
	createPod(t, k, ns2, "web-2", "web", "")
	createPod(t, k, other, "web-3", "web", "node-1")

	out, stop := start(t, "-n", ns1, "--namespace", ns2, "--index", "label:app=web")
	lines := waitLines(t, out, func(l []string) bool { return len(l) >= 3 })
	if want := []string{"synced 3 objects", "MATCH " + ns1 + "/web-1", "MATCH " + ns2 + "/web-2"}; !slices.Equal(lines, want) {
		t.Fatalf("output %q, want %q", lines, want)
	}

	createPod(t, k, ns2, "new", "web", "")
	createPod(t, k, other, "not-watched", "web", "")
	p, err := k.CoreV1().Pods(ns2).Get(t.Context(), "new", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Labels["v"] = "2"
	if _, err := k.CoreV1().Pods(ns2).Update(t.Context(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := k.CoreV1().Pods(ns2).Delete(t.Context(), "new", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	lines = waitLines(t, out, func(l []string) bool { return slices.Contains(l, "DELETE "+ns2+"/new") })
	events := lines[3:]
	// deleting an unbound Pod may first set its deletionTimestamp (an UPDATE).
	if len(events) < 3 || events[0] != "ADD "+ns2+"/new" || events[1] != "UPDATE "+ns2+"/new" || events[len(events)-1] != "DELETE "+ns2+"/new" {
		t.Fatalf("events %q", events)
	}
	for _, e := range events {
		if strings.Contains(e, other) {
			t.Fatalf("event from an unwatched namespace: %q", e)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("run after interrupt: %v", err)
	}
}

func TestSelectorNodeIndexAndResync(t *testing.T) {
	k := exampletest.Kube(t, env.Config())
	ns := "ex-inf-sel"
	namespace(t, k, ns)
	createPod(t, k, ns, "a", "web", "node-1")
	createPod(t, k, ns, "b", "web", "node-2")
	createPod(t, k, ns, "c", "db", "node-1")
	out, stop := start(t, "-n", ns, "-l", "app=web", "--index", "node=node-1", "--resync", "1s")
	waitLines(t, out, func(l []string) bool { return len(l) >= 2 })
	lines := waitLines(t, out, func(l []string) bool {
		n := 0
		for _, line := range l {
			if line == "UPDATE "+ns+"/a" {
				n++
			}
		}
		return n >= 2 // resynced twice
	})
	if want := []string{"synced 2 objects", "MATCH " + ns + "/a"}; !slices.Equal(lines[:2], want) {
		t.Fatalf("output %q, want it to start with %q", lines, want)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestClusterScopedResource(t *testing.T) {
	out, stop := start(t, "--resource", "namespaces", "-l", "kubernetes.io/metadata.name=kube-system", "--index", "namespace=")
	lines := waitLines(t, out, func(l []string) bool { return len(l) >= 2 })
	if want := []string{"synced 1 objects", "MATCH kube-system"}; !slices.Equal(lines, want) {
		t.Fatalf("output %q, want %q", lines, want)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown resource", []string{"--resource", "nopes.example.com"}, "nopes.example.com"},
		{"empty resource", []string{"--resource", ""}, "--resource"},
		{"bad selector", []string{"-l", "app in (x"}, "WithLabelSelector"},
		{"bad namespace", []string{"-n", "Bad_NS"}, "not a valid namespace name"},
		{"bad index", []string{"--index", "color=red"}, `unknown key "color"`},
		{"index without value", []string{"--index", "label:app"}, "KEY=VALUE"},
		{"bad flag", []string{"--nope"}, "unknown flag"},
		{"extra argument", []string{"pods"}, "unexpected arguments"},
		{"unknown context", []string{"--context", "nope"}, `"nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut exampletest.Output
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			err := run(ctx, append([]string{"--kubeconfig", env.KubeconfigPath()}, tt.args...), &out, &errOut)
			if err == nil || !strings.Contains(err.Error()+fmt.Sprint(errOut.Lines()), tt.want) {
				t.Fatalf("err = %v (stderr %q), want it to mention %q", err, errOut.Lines(), tt.want)
			}
			if s := strings.Join(out.Lines(), ""); s != "" {
				t.Fatalf("stdout on error: %q", s)
			}
		})
	}
}

// FuzzParseIndex: any --index value gives an error or an index name, never
// a panic; a name always comes with an index to add unless it is the
// namespace index, which every informer has.
func FuzzParseIndex(f *testing.F) {
	for _, s := range []string{"", "label:app=web", "node=node-1", "owner=123", "namespace=default", "label:=x", "=", "x", "label:a=b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, idx, _, err := parseIndex(s)
		switch {
		case err != nil:
			if name != "" || idx != nil {
				t.Fatalf("%q: error %v with a result", s, err)
			}
		case s == "":
			if name != "" || idx != nil {
				t.Fatalf("empty flag gave %q", name)
			}
		case name == "":
			t.Fatalf("%q: no error and no index", s)
		case idx == nil && name != "namespace":
			t.Fatalf("%q: index %q has nothing to add", s, name)
		case idx != nil && (idx.Name != name || idx.Func == nil):
			t.Fatalf("%q: index %+v for name %q", s, idx, name)
		}
	})
}
