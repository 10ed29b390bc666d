// Package outside tests its code against a real API server through kubekit's
// public testenv package, from a module of its own.
package outside

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/kubekit/kubekit/testenv"
)

func TestFromOutside(t *testing.T) {
	ctx := t.Context()
	env, err := testenv.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pids := env.PIDs()
	stopped := false
	defer func() {
		if !stopped {
			_ = env.Stop()
		}
	}()
	cs := kubernetes.NewForConfigOrDie(env.Config())
	cms := cs.CoreV1().ConfigMaps("default")

	// Write an object, restart the API server, read it back.
	created, err := cms.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "outside"},
		Data:       map[string]string{"from": "another module"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.RestartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := cms.Get(ctx, "outside", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get after the restart: %v", err)
	}
	if got.Data["from"] != "another module" || got.UID != created.UID {
		t.Fatalf("after the restart got %v (uid %s), want the object written before (uid %s)", got.Data, got.UID, created.UID)
	}

	// Compact: the resourceVersion of the first write is now too old.
	for i := range 3 {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("later-%d", i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: created.ResourceVersion})
	switch {
	case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
	case err != nil:
		t.Fatalf("watch from a compacted resourceVersion: %v, want 410 Gone", err)
	default:
		select {
		case ev, ok := <-w.ResultChan():
			st, _ := ev.Object.(*metav1.Status)
			if !ok || ev.Type != watch.Error || st == nil || st.Code != 410 {
				t.Fatalf("first event from a compacted resourceVersion = %v %#v, want ERROR 410", ev.Type, ev.Object)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no event from a watch at a compacted resourceVersion")
		}
		w.Stop()
	}

	// Stop: nothing it started is left.
	if err := env.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d still running after Stop", pid)
		}
	}
}

// alive reads /proc itself rather than trusting the package under test.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(data)) {
		if state, ok := strings.CutPrefix(line, "State:"); ok {
			return !strings.Contains(state, "Z")
		}
	}
	return false
}
