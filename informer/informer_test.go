package informer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/informer"
)

// recorder collects handler calls as "ADD ns/name rv" lines.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// forObject returns the events of one object, by their verb only.
func (r *recorder) forObject(key string) []string {
	var out []string
	for _, e := range r.get() {
		f := strings.Fields(e)
		if f[1] == key {
			out = append(out, f[0])
		}
	}
	return out
}

func podHandler(r *recorder) informer.Handler[*corev1.Pod] {
	return informer.Handler[*corev1.Pod]{
		OnAdd: func(p *corev1.Pod, initial bool) {
			verb := "ADD"
			if initial {
				verb = "INITIAL"
			}
			r.add("%s %s/%s", verb, p.Namespace, p.Name)
		},
		OnUpdate: func(old, cur *corev1.Pod) {
			verb := "UPDATE"
			if old.ResourceVersion == cur.ResourceVersion {
				verb = "RESYNC"
			}
			r.add("%s %s/%s", verb, cur.Namespace, cur.Name)
		},
		OnDelete: func(p *corev1.Pod) { r.add("DELETE %s/%s", p.Namespace, p.Name) },
	}
}

func waitSynced(t *testing.T, f *informer.Factory) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := f.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
}

// agree checks that the lister's view of namespace ns equals the server's:
// same names with the same resourceVersions.
func agree(t *testing.T, c *client.Client, l *informer.Lister[*corev1.Pod], ns string) func() error {
	t.Helper()
	return func() error {
		server, err := c.Kubernetes().CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		var want, got []string
		for _, p := range server.Items {
			want = append(want, p.Name+"@"+p.ResourceVersion)
		}
		cached, err := l.ListInNamespace(ns, nil)
		if err != nil {
			return err
		}
		for _, p := range cached {
			got = append(got, p.Name+"@"+p.ResourceVersion)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			return fmt.Errorf("cache %v, server %v", got, want)
		}
		return nil
	}
}

func names(pods []*corev1.Pod) []string {
	out := make([]string, 0, len(pods))
	for _, p := range pods {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	slices.Sort(out)
	return out
}

func TestTypedListerAgreesWithServer(t *testing.T) {
	c := newClient(t)
	verifyNoLeaks(t, c)
	ns := newNamespace(t, c)
	createPod(t, c, pod(ns, "web-1", map[string]string{"app": "web"}))
	db := pod(ns, "db-1", map[string]string{"app": "db"})
	db.Spec.NodeName = "node-1"
	createPod(t, c, db)

	f := newFactory(t, c)
	pods, err := informer.For[*corev1.Pod](t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	if gvr := pods.Resource(); gvr != corev1.SchemeGroupVersion.WithResource("pods") {
		t.Fatalf("Resource() = %v", gvr)
	}
	if err := pods.AddIndex(informer.ByLabel("app"), informer.PodsByNodeName(), informer.ByOwnerUID()); err != nil {
		t.Fatal(err)
	}
	var rec recorder
	if _, err := pods.AddHandler(podHandler(&rec)); err != nil {
		t.Fatal(err)
	}
	f.Start(t.Context())
	waitSynced(t, f)
	l := pods.Lister()
	if err := agree(t, c, l, ns)(); err != nil {
		t.Fatalf("after sync: %v", err)
	}

	got, err := l.Get(ns, "web-1")
	if err != nil || got.Labels["app"] != "web" {
		t.Fatalf("Get web-1 = %v, %v", got, err)
	}
	_, err = l.Get(ns, "nope")
	var status apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &status) || status.Status().Details.Kind != "pods" || status.Status().Details.Name != "nope" {
		t.Fatalf("Get missing: err = %v, want NotFound for pods \"nope\"", err)
	}
	byLabel := func(v string) []string {
		t.Helper()
		out, err := l.ByIndex(informer.LabelIndexName("app"), v)
		if err != nil {
			t.Fatal(err)
		}
		return names(out)
	}
	if got := byLabel("web"); !slices.Equal(got, []string{ns + "/web-1"}) {
		t.Fatalf("ByIndex app=web = %v", got)
	}
	onNode, err := l.ByIndex(informer.IndexNodeName, "node-1")
	if err != nil || !slices.Equal(names(onNode), []string{ns + "/db-1"}) {
		t.Fatalf("ByIndex node-1 = %v, %v", names(onNode), err)
	}
	sel := labels.SelectorFromSet(labels.Set{"app": "db"})
	if got, err := l.ListInNamespace(ns, sel); err != nil || !slices.Equal(names(got), []string{ns + "/db-1"}) {
		t.Fatalf("ListInNamespace app=db = %v, %v", names(got), err)
	}

	// create, update, delete; the cache follows.
	owner := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: types.UID("uid-123")}
	p3 := pod(ns, "web-2", map[string]string{"app": "web"})
	p3.OwnerReferences = []metav1.OwnerReference{owner}
	createPod(t, c, p3)
	web1, err := c.Kubernetes().CoreV1().Pods(ns).Get(t.Context(), "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	web1.Labels["app"] = "db"
	if _, err := c.Kubernetes().CoreV1().Pods(ns).Update(t.Context(), web1, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Kubernetes().CoreV1().Pods(ns).Delete(t.Context(), "web-2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "cache agrees with server", agree(t, c, l, ns))
	if _, err := l.Get(ns, "web-2"); !apierrors.IsNotFound(err) {
		t.Fatalf("Get deleted web-2: %v", err)
	}
	if got := byLabel("web"); len(got) != 0 {
		t.Fatalf("ByIndex app=web after relabel = %v", got)
	}
	if got := byLabel("db"); !slices.Equal(got, []string{ns + "/db-1", ns + "/web-1"}) {
		t.Fatalf("ByIndex app=db after relabel = %v", got)
	}

	// handlers saw every change of each object, in order, as typed objects.
	eventually(t, "handler events", func() error {
		want := map[string][]string{
			ns + "/web-1": {"INITIAL", "UPDATE"},
			ns + "/db-1":  {"INITIAL"},
			ns + "/web-2": {"ADD", "DELETE"},
		}
		for key, w := range want {
			got := rec.forObject(key)
			if key == ns+"/web-2" && len(got) == 3 && got[1] == "UPDATE" {
				// deleting sets deletionTimestamp first: one UPDATE may come between.
				got = slices.Delete(got, 1, 2)
			}
			if !slices.Equal(got, w) {
				return fmt.Errorf("%s: events %v, want %v (all: %v)", key, got, w, rec.get())
			}
		}
		return nil
	})
}

func TestOwnerIndexAndCustomIndex(t *testing.T) {
	c := newClient(t)
	verifyNoLeaks(t, c)
	ns := newNamespace(t, c)
	for i, uid := range []string{"u1", "u1", "u2"} {
		p := pod(ns, fmt.Sprintf("p%d", i), nil)
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "o-" + uid, UID: types.UID(uid)}}
		p.Spec.Containers[0].Image = fmt.Sprintf("img-%d", i%2)
		createPod(t, c, p)
	}
	f := newFactory(t, c, informer.WithNamespaces(ns))
	pods, err := informer.For[*corev1.Pod](t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(t.Context())
	waitSynced(t, f)
	// indexes may be added after sync: existing objects are indexed.
	byImage := informer.IndexFunc("image", func(p *corev1.Pod) []string {
		var out []string
		for _, c := range p.Spec.Containers {
			out = append(out, c.Image)
		}
		return out
	})
	if err := pods.AddIndex(informer.ByOwnerUID(), byImage); err != nil {
		t.Fatal(err)
	}
	if err := pods.AddIndex(informer.ByOwnerUID()); err == nil || !strings.Contains(err.Error(), `index "owner" exists already`) {
		t.Fatalf("adding an index twice: %v", err)
	}
	l := pods.Lister()
	for _, tt := range []struct {
		name, index, value string
		want               []string
	}{
		{"owner u1", informer.IndexOwnerUID, "u1", []string{ns + "/p0", ns + "/p1"}},
		{"owner u2", informer.IndexOwnerUID, "u2", []string{ns + "/p2"}},
		{"image 0", "image", "img-0", []string{ns + "/p0", ns + "/p2"}},
		{"namespace", informer.IndexNamespace, ns, []string{ns + "/p0", ns + "/p1", ns + "/p2"}},
		{"nothing", informer.IndexOwnerUID, "none", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := l.ByIndex(tt.index, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			if n := names(got); !slices.Equal(n, tt.want) && (len(n) != 0 || len(tt.want) != 0) {
				t.Fatalf("ByIndex(%s, %s) = %v, want %v", tt.index, tt.value, n, tt.want)
			}
		})
	}
}

func TestNamespacesAndSelectors(t *testing.T) {
	c := newClient(t)
	verifyNoLeaks(t, c)
	ns1, ns2, ns3 := newNamespace(t, c), newNamespace(t, c), newNamespace(t, c)
	for _, ns := range []string{ns1, ns2, ns3} {
		createPod(t, c, pod(ns, "web", map[string]string{"app": "web"}))
		createPod(t, c, pod(ns, "db", map[string]string{"app": "db"}))
		scheduled := pod(ns, "scheduled", map[string]string{"app": "web"})
		scheduled.Spec.NodeName = "node-1"
		createPod(t, c, scheduled)
	}
	tests := []struct {
		name string
		opts []informer.Option
		want []string
	}{
		{"two namespaces", []informer.Option{informer.WithNamespaces(ns1, ns2)},
			[]string{ns1 + "/db", ns1 + "/scheduled", ns1 + "/web", ns2 + "/db", ns2 + "/scheduled", ns2 + "/web"}},
		{"label selector", []informer.Option{informer.WithNamespaces(ns1), informer.WithNamespaces(ns3), informer.WithLabelSelector("app=web")},
			[]string{ns1 + "/scheduled", ns1 + "/web", ns3 + "/scheduled", ns3 + "/web"}},
		{"field selector", []informer.Option{informer.WithNamespaces(ns2, ns3), informer.WithFieldSelector("spec.nodeName=node-1")},
			[]string{ns2 + "/scheduled", ns3 + "/scheduled"}},
		{"both selectors", []informer.Option{informer.WithNamespaces(ns1, ns2, ns3), informer.WithLabelSelector("app=web"), informer.WithFieldSelector("spec.nodeName!=node-1")},
			[]string{ns1 + "/web", ns2 + "/web", ns3 + "/web"}},
	}
	for _, tt := range tests {
		slices.Sort(tt.want) // namespace names do not sort in creation order
		t.Run(tt.name, func(t *testing.T) {
			f := newFactory(t, c, tt.opts...)
			pods, err := informer.For[*corev1.Pod](t.Context(), f)
			if err != nil {
				t.Fatal(err)
			}
			var rec recorder
			if _, err := pods.AddHandler(podHandler(&rec)); err != nil {
				t.Fatal(err)
			}
			f.Start(t.Context())
			waitSynced(t, f)
			all, err := pods.Lister().List(nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(all); !slices.Equal(got, tt.want) {
				t.Fatalf("List = %v, want %v", got, tt.want)
			}
			if got := pods.Lister().Keys(); !slices.Equal(got, tt.want) {
				t.Fatalf("Keys = %v, want %v", got, tt.want)
			}
			eventually(t, "initial adds", func() error {
				if n := len(rec.get()); n != len(tt.want) {
					return fmt.Errorf("%d events: %v", n, rec.get())
				}
				return nil
			})
		})
	}

	t.Run("unwatched namespace", func(t *testing.T) {
		f := newFactory(t, c, informer.WithNamespaces(ns1, ns2))
		pods, err := informer.For[*corev1.Pod](t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		f.Start(t.Context())
		waitSynced(t, f)
		if p, err := pods.Lister().Get(ns2, "db"); err != nil || p.Namespace != ns2 {
			t.Fatalf("Get in watched ns: %v, %v", p, err)
		}
		_, err = pods.Lister().Get(ns3, "db")
		if !errors.Is(err, informer.ErrNotWatched) || !strings.Contains(err.Error(), ns3) {
			t.Fatalf("Get in unwatched ns: %v", err)
		}
		if _, err := pods.Lister().ListInNamespace(ns3, nil); !errors.Is(err, informer.ErrNotWatched) {
			t.Fatalf("ListInNamespace in unwatched ns: %v", err)
		}
		// cluster-scoped resources ignore WithNamespaces.
		nss, err := informer.For[*corev1.Namespace](t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		if err := nss.WaitForSync(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n, err := nss.Lister().Get("", ns3); err != nil || n.Name != ns3 {
			t.Fatalf("Get namespace %s: %v, %v", ns3, n, err)
		}
	})
}

func TestResync(t *testing.T) {
	c := newClient(t)
	verifyNoLeaks(t, c)
	ns := newNamespace(t, c)
	createPod(t, c, pod(ns, "p", nil))
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cm"}}
	if _, err := c.Kubernetes().CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f := newFactory(t, c, informer.WithNamespaces(ns), informer.WithResyncFor(schema.GroupResource{Resource: "pods"}, time.Second))
	pods, err := informer.For[*corev1.Pod](t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	if _, err := pods.AddHandler(podHandler(&rec)); err != nil {
		t.Fatal(err)
	}
	cms, err := informer.For[*corev1.ConfigMap](t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	var cmUpdates sync.Map
	if _, err := cms.AddHandler(informer.Handler[*corev1.ConfigMap]{OnUpdate: func(_, cur *corev1.ConfigMap) { cmUpdates.Store(cur.Name, true) }}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	f.Start(t.Context())
	waitSynced(t, f)
	eventually(t, "three resyncs", func() error {
		if n := len(slices.DeleteFunc(rec.get(), func(e string) bool { return !strings.HasPrefix(e, "RESYNC") })); n < 3 {
			return fmt.Errorf("%d resyncs: %v", n, rec.get())
		}
		return nil
	})
	if took := time.Since(start); took < 2*time.Second {
		t.Fatalf("3 resyncs at a 1s period took only %v", took)
	}
	if _, ok := cmUpdates.Load("cm"); ok {
		t.Fatal("configmaps resynced, but only pods have a resync period")
	}
}

func TestDropManagedFields(t *testing.T) {
	c := newClient(t)
	verifyNoLeaks(t, c)
	ns := newNamespace(t, c)
	created := createPod(t, c, pod(ns, "p", map[string]string{"a": "b"}))
	if len(created.ManagedFields) == 0 {
		t.Fatal("the server recorded no managedFields; the test proves nothing")
	}
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprint("drop=", drop), func(t *testing.T) {
			var transformed sync.Map
			f := newFactory(t, c, informer.WithNamespaces(ns), informer.WithDropManagedFields(drop),
				informer.WithTransform(func(obj any) (any, error) {
					// the user transform runs after managedFields are dropped
					if p, ok := obj.(*corev1.Pod); ok {
						transformed.Store(p.Name, len(p.ManagedFields))
					}
					return obj, nil
				}))
			pods, err := informer.For[*corev1.Pod](t.Context(), f)
			if err != nil {
				t.Fatal(err)
			}
			f.Start(t.Context())
			waitSynced(t, f)
			p, err := pods.Lister().Get(ns, "p")
			if err != nil {
				t.Fatal(err)
			}
			if got := len(p.ManagedFields) == 0; got != drop {
				t.Fatalf("cached managedFields %v, drop %v", p.ManagedFields, drop)
			}
			if p.Labels["a"] != "b" {
				t.Fatalf("transform lost labels: %v", p.Labels)
			}
			n, ok := transformed.Load("p")
			if !ok || (n.(int) == 0) != drop {
				t.Fatalf("user transform saw %v managedFields entries (ran %v), drop %v", n, ok, drop)
			}
		})
	}
}

func TestInformerAfterStartAndHandlerRemoval(t *testing.T) {
	c := newClient(t)
	verifyNoLeaks(t, c)
	ns := newNamespace(t, c)
	f := newFactory(t, c, informer.WithNamespaces(ns))
	f.Start(t.Context())
	waitSynced(t, f) // nothing requested yet: returns at once

	cms, err := informer.For[*corev1.ConfigMap](t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	var kept, removed recorder
	handler := func(r *recorder) informer.Handler[*corev1.ConfigMap] {
		return informer.Handler[*corev1.ConfigMap]{OnAdd: func(cm *corev1.ConfigMap, _ bool) { r.add("ADD %s", cm.Name) }}
	}
	if _, err := cms.AddHandler(handler(&kept)); err != nil {
		t.Fatal(err)
	}
	reg, err := cms.AddHandler(handler(&removed))
	if err != nil {
		t.Fatal(err)
	}
	waitSynced(t, f)
	eventually(t, "handler synced", func() error {
		if !reg.HasSynced() {
			return errors.New("registration not synced")
		}
		return nil
	})
	if err := reg.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := reg.Remove(); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	for _, name := range []string{"a", "b"} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if _, err := c.Kubernetes().CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "kept handler sees both", func() error {
		if got := kept.get(); !slices.Equal(got, []string{"ADD a", "ADD b"}) {
			return fmt.Errorf("events %v", got)
		}
		return nil
	})
	if got := removed.get(); len(got) != 0 {
		t.Fatalf("removed handler got %v", got)
	}
	if got, err := cms.Lister().Get(ns, "b"); err != nil || got.Name != "b" {
		t.Fatalf("Get b: %v, %v", got, err)
	}
}

func TestWaitForSyncNamesWhatDidNotSync(t *testing.T) {
	cfg, err := env.UserConfig("nobody")
	if err != nil {
		t.Fatal(err)
	}
	admin := newClient(t)
	ns := newNamespace(t, admin)
	// discovery is open to every authenticated user; listing pods is not.
	nobody := newClientFor(t, cfg)
	verifyNoLeaks(t, admin, nobody)
	f := newFactory(t, nobody, informer.WithNamespaces(ns))
	if _, err := informer.For[*corev1.Pod](t.Context(), f); err != nil {
		t.Fatal(err)
	}
	f.Start(t.Context())
	// Forbidden is permanent (see informer.Permanent): the wait ends at
	// once with the API error, which names the missing permission.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err = f.WaitForSync(ctx)
	if err == nil || !apierrors.IsForbidden(err) || ctx.Err() != nil || !strings.Contains(err.Error(), "pods in "+ns) || !strings.Contains(err.Error(), "RBAC") {
		t.Fatalf("WaitForSync = %v, want a Forbidden error naming pods in %s before the deadline", err, ns)
	}
}

// A client built with client.WithTimeout must not cut the informers' watch
// streams: New builds the factory's clients with Timeout 0.
func TestClientTimeoutDoesNotCutWatches(t *testing.T) {
	c := newClient(t, client.WithTimeout(time.Second))
	verifyNoLeaks(t, c)
	ns := newNamespace(t, c)
	f := newFactory(t, c, informer.WithNamespaces(ns))
	pods, err := informer.For[*corev1.Pod](t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	var rec recorder
	if _, err := pods.AddHandler(podHandler(&rec)); err != nil {
		t.Fatal(err)
	}
	f.Start(t.Context())
	waitSynced(t, f)
	// A cut watch is not an error for client-go: the reflector quietly
	// watches again. The API server counts each watch when it ends, so
	// outlive the client's timeout three times over and check no namespaced
	// pod watch ended meanwhile (this test runs alone against its env).
	// Earlier tests' watches may still be ending: start from a count that
	// holds still for half a second.
	before := endedPodWatches(t, c)
	for range 20 {
		time.Sleep(500 * time.Millisecond)
		now := endedPodWatches(t, c)
		if now == before {
			break
		}
		before = now
	}
	deadline := time.Now().Add(3500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if errs := informer.WatchErrors(f); len(errs) > 0 {
			t.Fatalf("watch errors: %v", errs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after := endedPodWatches(t, c); after != before {
		t.Fatalf("%v pod watches ended within 3.5s: the client's 1s timeout cuts them", after-before)
	}
	createPod(t, c, pod(ns, "late", nil))
	eventually(t, "ADD after the client timeout", func() error {
		if got := rec.forObject(ns + "/late"); !slices.Equal(got, []string{"ADD"}) {
			return fmt.Errorf("events %v", rec.get())
		}
		return nil
	})
	if errs := informer.WatchErrors(f); len(errs) > 0 {
		t.Fatalf("watch errors: %v", errs)
	}
}

// endedPodWatches reads the API server's count of finished namespaced pod
// watches from /metrics.
func endedPodWatches(t *testing.T, c *client.Client) float64 {
	t.Helper()
	raw, err := c.Kubernetes().CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "apiserver_request_total{") && strings.Contains(line, `resource="pods"`) &&
			strings.Contains(line, `verb="WATCH"`) && strings.Contains(line, `scope="namespace"`) {
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v); err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			n += v
		}
	}
	return n
}
