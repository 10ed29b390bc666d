package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubekit/kubekit/client"
)

// fill creates namespace ns with n ConfigMaps named cm-00000 ... (so the
// server's key order is name order), using a few concurrent writers.
func fill(t testing.TB, ctx context.Context, cs kubernetes.Interface, ns string, n int) {
	t.Helper()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const writers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				cm := &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%05d", i), Labels: map[string]string{"parity": []string{"even", "odd"}[i%2]}},
					Data:       map[string]string{"index": fmt.Sprint(i), "payload": "some realistic configuration value that takes a few bytes"},
				}
				if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

var (
	bigOnce sync.Once
	bigNS   = "list-3000"
)

func bigNamespace(t *testing.T) (*client.Client, string) {
	t.Helper()
	c := newClient(t, client.WithRateLimit(false))
	bigOnce.Do(func() { fill(t, t.Context(), c.Kubernetes(), bigNS, 3000) })
	return c, bigNS
}

// checkNames asserts names are exactly cm-00000 ... cm-(n-1) in order: the
// right count, no duplicates, page order kept.
func checkNames(t *testing.T, names []string, n int) {
	t.Helper()
	if len(names) != n {
		t.Fatalf("got %d items, want %d", len(names), n)
	}
	for i, name := range names {
		if want := fmt.Sprintf("cm-%05d", i); name != want {
			t.Fatalf("item %d is %s, want %s (duplicate, missing or out of order)", i, name, want)
		}
	}
}

func TestListPageSizes(t *testing.T) {
	c, ns := bigNamespace(t)
	for _, size := range []int64{1, 100, 500, 5000} {
		t.Run(fmt.Sprint("page-", size), func(t *testing.T) {
			var info client.ListInfo
			var names []string
			for cm, err := range client.List[*corev1.ConfigMap](t.Context(), c.Kubernetes().CoreV1().ConfigMaps(ns).List,
				client.PageSize(size), client.WithListInfo(&info)) {
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, cm.Name)
			}
			checkNames(t, names, 3000)
			wantPages := int((3000 + size - 1) / size)
			if info.Pages != wantPages || info.Items != 3000 || info.ResourceVersion == "" || info.Inconsistent {
				t.Fatalf("info = %+v, want %d pages", info, wantPages)
			}
		})
	}
}

func TestListDynamicSelectorsCollectCount(t *testing.T) {
	c, ns := bigNamespace(t)
	ctx := t.Context()
	ri := c.Dynamic().Resource(corev1.SchemeGroupVersion.WithResource("configmaps")).Namespace(ns)
	n := 0
	for obj, err := range client.ListDynamic(ctx, ri, client.PageSize(250), client.LabelSelector("parity=odd")) {
		if err != nil {
			t.Fatal(err)
		}
		if obj.GetLabels()["parity"] != "odd" || obj.GetKind() != "ConfigMap" {
			t.Fatalf("unexpected object %s labels %v kind %q", obj.GetName(), obj.GetLabels(), obj.GetKind())
		}
		n++
	}
	if n != 1500 {
		t.Fatalf("dynamic odd items = %d, want 1500", n)
	}
	all, err := client.Collect[*corev1.ConfigMap](ctx, c.Kubernetes().CoreV1().ConfigMaps(ns).List, client.PageSize(700))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(all))
	for i := range all {
		names[i] = all[i].Name
	}
	checkNames(t, names, 3000)
	one, err := client.Collect[*corev1.ConfigMap](ctx, c.Kubernetes().CoreV1().ConfigMaps(ns).List, client.FieldSelector("metadata.name=cm-00042"))
	if err != nil || len(one) != 1 || one[0].Data["index"] != "42" {
		t.Fatalf("field selector: %v %v", one, err)
	}
	for _, tt := range []struct {
		name string
		opts []client.ListOption
		want int64
	}{
		{"remainingItemCount", nil, 3000},
		{"label selector pages", []client.ListOption{client.LabelSelector("parity=even"), client.PageSize(400)}, 1500},
		{"field selector", []client.ListOption{client.FieldSelector("metadata.name!=cm-00000")}, 2999},
	} {
		got, err := client.Count(ctx, c.Kubernetes().CoreV1().ConfigMaps(ns).List, tt.opts...)
		if err != nil || got != tt.want {
			t.Errorf("Count %s = %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
	got, err := client.Count(ctx, ri.List)
	if err != nil || got != 3000 {
		t.Errorf("dynamic Count = %d, %v", got, err)
	}
}

func TestListCancelMidStream(t *testing.T) {
	c, ns := bigNamespace(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var (
		seen     int
		lastErr  error
		afterErr int
	)
	for cm, err := range client.List[*corev1.ConfigMap](ctx, c.Kubernetes().CoreV1().ConfigMaps(ns).List, client.PageSize(100)) {
		if lastErr != nil {
			afterErr++
		}
		if err != nil {
			lastErr = err
			continue
		}
		seen++
		if cm.Name == "cm-00042" {
			cancel()
		}
	}
	if !errors.Is(lastErr, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", lastErr)
	}
	if seen != 43 || afterErr != 0 {
		t.Fatalf("saw %d items (want 43, none after cancel) and %d elements after the error", seen, afterErr)
	}
}

func TestListStopEarly(t *testing.T) {
	c, ns := bigNamespace(t)
	var info client.ListInfo
	n := 0
	for _, err := range client.List[*corev1.ConfigMap](t.Context(), c.Kubernetes().CoreV1().ConfigMaps(ns).List,
		client.PageSize(10), client.WithListInfo(&info)) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 15 {
			break
		}
	}
	if info.Pages != 2 || info.Items != 15 {
		t.Fatalf("info after break = %+v, want 2 pages and 15 items", info)
	}
}

func TestListBadInput(t *testing.T) {
	c := newClient(t)
	cms := c.Kubernetes().CoreV1().ConfigMaps("default").List
	tests := []struct {
		name string
		seq  func() error
		want string
	}{
		{"zero page size", func() error { return firstErr(client.List[*corev1.ConfigMap](t.Context(), cms, client.PageSize(0))) }, "PageSize(0)"},
		{"wrong item type", func() error { return firstErr(client.List[*corev1.Pod](t.Context(), cms)) }, "use List[*v1.ConfigMap]"},
		{"bad selector", func() error {
			return firstErr(client.List[*corev1.ConfigMap](t.Context(), cms, client.LabelSelector("a in (b")))
		}, "unable to parse requirement"},
		{"unknown strategy", func() error {
			_, err := client.Collect[*corev1.ConfigMap](t.Context(), cms, client.OnExpired(client.ExpiredStrategy(9)))
			return err
		}, "unknown strategy"},
		{"match without rv", func() error {
			_, err := client.Count(t.Context(), cms, client.AtResourceVersion("", metav1.ResourceVersionMatchExact))
			return err
		}, "needs a resourceVersion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.seq()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func firstErr[T any](seq func(func(T, error) bool)) error {
	for _, err := range seq {
		if err != nil {
			return err
		}
	}
	return nil
}

// TestListExpiredContinue compacts etcd (and restarts the API server, so no
// cache can serve the old snapshot) between two pages, for each strategy.
func TestListExpiredContinue(t *testing.T) {
	c := newClient(t, client.WithRateLimit(false))
	ctx := t.Context()
	const ns, n, size = "list-expired", 300, 100
	fill(t, ctx, c.Kubernetes(), ns, n)
	expire := func(t *testing.T) {
		t.Helper()
		// A write after the first page's snapshot, so compaction passes it.
		if _, err := c.Kubernetes().CoreV1().ConfigMaps("default").Create(ctx,
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "bump-"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := env.Compact(ctx); err != nil {
			t.Fatal(err)
		}
	}
	list := c.Kubernetes().CoreV1().ConfigMaps(ns).List

	t.Run("fail", func(t *testing.T) {
		var names []string
		var lastErr error
		for cm, err := range client.List[*corev1.ConfigMap](ctx, list, client.PageSize(size)) {
			if err != nil {
				lastErr = err
				break
			}
			if names = append(names, cm.Name); len(names) == 1 {
				expire(t)
			}
		}
		var ee *client.ExpiredError
		if !errors.As(lastErr, &ee) || !apierrors.IsResourceExpired(lastErr) {
			t.Fatalf("err = %v, want *ExpiredError wrapping 410", lastErr)
		}
		if ee.Items != size || ee.Pages != 1 || len(names) != size {
			t.Fatalf("expired error %+v after %d names", ee, len(names))
		}
	})
	t.Run("continue inconsistent", func(t *testing.T) {
		var info client.ListInfo
		var names []string
		for cm, err := range client.List[*corev1.ConfigMap](ctx, list, client.PageSize(size),
			client.OnExpired(client.ExpiredContinueInconsistent), client.WithListInfo(&info)) {
			if err != nil {
				t.Fatal(err)
			}
			if names = append(names, cm.Name); len(names) == 1 {
				expire(t)
			}
		}
		checkNames(t, names, n)
		if !info.Inconsistent || info.Restarts != 0 {
			t.Fatalf("info = %+v, want Inconsistent", info)
		}
	})
	t.Run("restart", func(t *testing.T) {
		var info client.ListInfo
		var names []string
		for cm, err := range client.List[*corev1.ConfigMap](ctx, list, client.PageSize(size),
			client.OnExpired(client.ExpiredRestart), client.WithListInfo(&info)) {
			if err != nil {
				t.Fatal(err)
			}
			if names = append(names, cm.Name); len(names) == 1 {
				expire(t)
			}
		}
		// The first page is yielded twice: once before, once after the restart.
		checkNames(t, names[size:], n)
		if info.Restarts != 1 || info.Inconsistent {
			t.Fatalf("info = %+v, want 1 restart", info)
		}
	})
	t.Run("collect restart", func(t *testing.T) {
		pages := 0
		hooked := func(ctx context.Context, lo metav1.ListOptions) (*corev1.ConfigMapList, error) {
			l, err := list(ctx, lo)
			if pages++; pages == 1 {
				expire(t)
			}
			return l, err
		}
		all, err := client.Collect[*corev1.ConfigMap](ctx, hooked, client.PageSize(size), client.OnExpired(client.ExpiredRestart))
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, len(all))
		for i := range all {
			names[i] = all[i].Name
		}
		checkNames(t, names, n)
	})
	t.Run("restart gives up", func(t *testing.T) {
		// Expire after every page: MaxListRestarts bounds the retries.
		pages := 0
		hooked := func(ctx context.Context, lo metav1.ListOptions) (*corev1.ConfigMapList, error) {
			l, err := list(ctx, lo)
			pages++
			if err == nil && lo.Continue == "" {
				expire(t)
			}
			return l, err
		}
		_, err := client.Collect[*corev1.ConfigMap](ctx, hooked, client.PageSize(size), client.OnExpired(client.ExpiredRestart))
		var ee *client.ExpiredError
		if !errors.As(err, &ee) || ee.Restarts != client.MaxListRestarts {
			t.Fatalf("err = %v, want ExpiredError after %d restarts", err, client.MaxListRestarts)
		}
		if pages != 2*(client.MaxListRestarts+1) {
			t.Fatalf("made %d requests, want %d", pages, 2*(client.MaxListRestarts+1))
		}
	})
}

// ptrList is a list whose items are already pointers, as the watch
// package's pages are.
type ptrList struct {
	metav1.ListMeta
	Items []*corev1.ConfigMap
}

// TestListItemShapes: List yields shallow copies (keeping an item does not
// keep its page), Collect points into the pages, and both take lists whose
// items are pointers already.
func TestListItemShapes(t *testing.T) {
	page := &corev1.ConfigMapList{Items: []corev1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, {ObjectMeta: metav1.ObjectMeta{Name: "b"}}}}
	values := func(context.Context, metav1.ListOptions) (*corev1.ConfigMapList, error) { return page, nil }
	var listed []*corev1.ConfigMap
	for cm, err := range client.List[*corev1.ConfigMap](t.Context(), values) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, cm)
	}
	if len(listed) != 2 || listed[0].Name != "a" || listed[1].Name != "b" || listed[0] == &page.Items[0] || listed[1] == &page.Items[1] {
		t.Fatalf("List = %v, want copies of a and b", listed)
	}
	all, err := client.Collect[*corev1.ConfigMap](t.Context(), values)
	if err != nil || len(all) != 2 || all[0] != &page.Items[0] || all[1] != &page.Items[1] {
		t.Fatalf("Collect = %v, %v: want pointers into the page", all, err)
	}

	ptrs := &ptrList{Items: []*corev1.ConfigMap{&page.Items[0], &page.Items[1]}}
	pointers := func(context.Context, metav1.ListOptions) (*ptrList, error) { return ptrs, nil }
	all, err = client.Collect[*corev1.ConfigMap](t.Context(), pointers)
	if err != nil || len(all) != 2 || all[0] != ptrs.Items[0] || all[1] != ptrs.Items[1] {
		t.Fatalf("Collect of pointer items = %v, %v", all, err)
	}
	n := 0
	for cm, err := range client.List[*corev1.ConfigMap](t.Context(), pointers) {
		if err != nil || cm != ptrs.Items[n] {
			t.Fatalf("List of pointer items: %v, %v", cm, err)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("List of pointer items yielded %d, want 2", n)
	}
	if _, err := client.Collect[*corev1.Pod](t.Context(), pointers); err == nil || !strings.Contains(err.Error(), "use List[*v1.ConfigMap]") {
		t.Fatalf("Collect[*corev1.Pod] of ConfigMap pointers = %v", err)
	}
}
