package client_test

import (
	"strings"
	"testing"

	"github.com/kubekit/kubekit/client"
)

func TestDiff(t *testing.T) {
	c := newClient(t)
	defer c.Close()
	ctx := t.Context()
	ns := writeNamespace(t, c, "diff-lib")
	cm := func(v string) client.Manifest {
		return client.Manifest{Source: "test", Index: 1, Object: unstructuredCM("", "cm", map[string]any{"k": v})}
	}
	rs, err := c.Diff(ctx, []client.Manifest{cm("a")}, client.InNamespace(ns))
	if err != nil || rs[0].Live != nil || !rs[0].Changed() || !strings.Contains(string(rs[0].Merged), "k: a\n") || rs[0].Object.GetNamespace() != ns {
		t.Fatalf("diff of a new object: %+v, %v", rs, err)
	}
	if err := c.Get(ctx, unstructuredCM(ns, "cm", nil)); err == nil {
		t.Fatal("Diff created the object")
	}
	if _, err := c.ApplyManifests(ctx, []client.Manifest{cm("a")}, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	rs, err = c.Diff(ctx, []client.Manifest{cm("a"), cm("b")}, client.InNamespace(ns))
	if err != nil || rs[0].Changed() || rs[0].Unified("a", "", "b", "") != "" || !rs[1].Changed() {
		t.Fatalf("diff unchanged/changed: %+v, %v", rs, err)
	}
	want := "--- live\n+++ merged\n"
	if u := rs[1].Unified("live", "", "merged", ""); !strings.HasPrefix(u, want) || !strings.Contains(u, "-  k: a\n+  k: b\n") || strings.Contains(u, "managedFields") {
		t.Errorf("unified diff:\n%s", u)
	}
	// A delete option (PropagationPolicy) does not compile with Diff:
	// testdata/nocompile, TestMisplacedOptionsDoNotCompile.
	rs, err = c.Diff(ctx, []client.Manifest{{Source: "test", Index: 2}})
	if err == nil || rs[0].Err == nil || rs[0].Changed() {
		t.Errorf("Diff of an empty manifest: %+v, %v", rs, err)
	}
}
