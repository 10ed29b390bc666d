package client_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubekit/kubekit/client"
)

// TestApplyManifestsConcurrentInOrder applies a stage concurrently with a
// failing object in the middle: results stay in input order, each with its
// own outcome or error, and the client's QPS still bounds the requests.
func TestApplyManifestsConcurrentInOrder(t *testing.T) {
	const qps = 40
	c := newClient(t, client.WithQPS(qps), client.WithBurst(1))
	defer c.Close()
	ctx := t.Context()
	ns := writeNamespace(t, c, "apply-concurrent")
	var ms []client.Manifest
	for i := range 12 {
		u := unstructuredCM(ns, fmt.Sprintf("cm-%02d", i), map[string]any{"i": fmt.Sprint(i)})
		if i == 5 {
			u.Object["data"] = map[string]any{"bad key!": "x"}
		}
		ms = append(ms, client.Manifest{Source: "test", Index: i + 1, Object: u})
	}
	start := time.Now()
	rs, err := c.ApplyManifests(ctx, ms, client.Concurrency(8))
	elapsed := time.Since(start)
	if err == nil || !apierrors.IsInvalid(err) {
		t.Fatalf("err %v, want the Invalid error of cm-05", err)
	}
	for i, r := range rs {
		want := client.Created
		if i == 5 {
			if r.Err == nil || !strings.Contains(r.Err.Error(), "cm-05") {
				t.Errorf("result 5: %+v, want cm-05's error", r)
			}
			continue
		}
		if r.Err != nil || r.Outcome != want || r.Object.GetName() != fmt.Sprintf("cm-%02d", i) {
			t.Errorf("result %d: %s %s %v, want cm-%02d %s", i, r.Name(), r.Outcome, r.Err, i, want)
		}
	}
	// 12 objects: one list and 12 applies at least; burst 1 at 40/s.
	if min := time.Duration(12) * time.Second / qps; elapsed < min {
		t.Errorf("applied in %v: faster than QPS %d allows (%v)", elapsed, qps, min)
	}
	rs, err = c.ApplyManifests(ctx, append(ms[:5:5], ms[6:]...), client.Concurrency(3))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Outcome != client.Unchanged {
			t.Errorf("re-apply: %s %s, want unchanged", r.Name(), r.Outcome)
		}
	}
	if _, err := c.ApplyManifests(ctx, ms, client.Concurrency(0)); err == nil || !strings.Contains(err.Error(), "client: Concurrency(0): must be positive") {
		t.Errorf("Concurrency(0): %v", err)
	}
}

// TestApplyRecreate changes a Job's Pod template, which is immutable: the
// apply fails, and with Recreate the Job is deleted and created again.
func TestApplyRecreate(t *testing.T) {
	c := newClient(t)
	defer c.Close()
	ctx := t.Context()
	ns := writeNamespace(t, c, "apply-recreate")
	j := job(ns, "j")
	j.Spec.Template.Spec.NodeSelector = nil
	if _, err := c.Apply(ctx, j); err != nil {
		t.Fatal(err)
	}
	old := j.UID
	changed := job(ns, "j")
	changed.Spec.Template.Spec.NodeSelector = nil
	changed.Spec.Template.Spec.Containers[0].Image = "busybox:1.37"
	ms := []client.Manifest{{Source: "test", Index: 1, Object: toUnstructured(t, changed)}}
	if _, err := c.ApplyManifests(ctx, ms); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "immutable") {
		t.Fatalf("apply of an immutable change: %v, want Invalid (immutable)", err)
	}
	rs, err := c.ApplyManifests(ctx, ms, client.Recreate(true))
	if err != nil || rs[0].Outcome != client.Configured || !rs[0].Recreated {
		t.Fatalf("Recreate: %+v, %v; want configured and Recreated", rs, err)
	}
	live, err := c.Kubernetes().BatchV1().Jobs(ns).Get(ctx, "j", metav1.GetOptions{})
	if err != nil || live.UID == old || live.Spec.Template.Spec.Containers[0].Image != "busybox:1.37" {
		t.Fatalf("after Recreate: %v (uid %s, was %s)", err, live.UID, old)
	}
	if _, err := c.ApplyManifests(ctx, ms, client.Recreate(true), client.DryRun(true)); err == nil || !strings.Contains(err.Error(), "cannot be used with DryRun") {
		t.Errorf("Recreate with DryRun: %v", err)
	}
}
