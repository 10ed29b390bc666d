package client_test

import (
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubekit/kubekit/client"
)

func TestApplySetIDAndParse(t *testing.T) {
	tests := []struct {
		ref, id, err string
	}{
		{ref: "set", id: "applyset-Pu36xmA3k-zIWEVyrt5JsMq6uh2VNv_Gz2zZrwJrMIE-v1"},
		{ref: "secrets/set", id: "applyset-Pu36xmA3k-zIWEVyrt5JsMq6uh2VNv_Gz2zZrwJrMIE-v1"},
		{ref: "configmaps/set", id: "applyset-asjzdfX-RCzvzmPZTduaxhW3ykMXL06uCIMstZ9Ldxs-v1"},
		{ref: "configmap/set", id: "applyset-asjzdfX-RCzvzmPZTduaxhW3ykMXL06uCIMstZ9Ldxs-v1"},
		{ref: "secrets/", err: "name cannot be blank"},
		{ref: "deployments.apps/set", err: "kubekit supports Secret and ConfigMap parents"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			a, err := client.ParseApplySet(tt.ref, "team-a")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil || a.ID() != tt.id {
				t.Fatalf("ID %q, %v; want %q", a.ID(), err, tt.id)
			}
		})
	}
	if got := client.DefaultTooling(); !strings.HasPrefix(got, "kubekit/v") {
		t.Errorf("DefaultTooling() = %q, want kubekit/v...", got)
	}
}

func TestApplyAndPruneBadInput(t *testing.T) {
	c := newClient(t)
	defer c.Close()
	ctx := t.Context()
	cm := client.Manifest{Source: "test", Index: 1, Object: unstructuredCM("default", "x", nil)}
	_, _, err := c.ApplyAndPrune(ctx, client.ApplySet{Name: "s"}, []client.Manifest{cm})
	if err == nil || !strings.Contains(err.Error(), "namespace is required to use namespace-scoped ApplySet") {
		t.Errorf("no namespace: %v", err)
	}
	_, _, err = c.ApplyAndPrune(ctx, client.ApplySet{Name: "s", Namespace: "default", Tooling: "kubekit"}, []client.Manifest{cm})
	if err == nil || !strings.Contains(err.Error(), `Tooling "kubekit": want name/version`) {
		t.Errorf("bad tooling: %v", err)
	}
	labelled := unstructuredCM("default", "x", nil)
	labelled.SetLabels(map[string]string{client.ApplySetPartOfLabel: "other"})
	_, _, err = c.ApplyAndPrune(ctx, client.ApplySet{Name: "s", Namespace: "default"}, []client.Manifest{{Source: "test", Index: 1, Object: labelled}})
	if err == nil || !strings.Contains(err.Error(), "already set in input data") {
		t.Errorf("part-of label in input: %v", err)
	}
	// A dry run stores nothing, the parent included.
	ns := writeNamespace(t, c, "applyset-dry-run")
	applied, pruned, err := c.ApplyAndPrune(ctx, client.ApplySet{Name: "s", Namespace: ns}, []client.Manifest{{Source: "test", Index: 1, Object: unstructuredCM(ns, "x", nil)}}, client.DryRun(true))
	if err != nil || len(applied) != 1 || applied[0].Outcome != client.Created || len(pruned) != 0 {
		t.Fatalf("dry run: %+v %+v %v", applied, pruned, err)
	}
	if _, err := c.Kubernetes().CoreV1().Secrets(ns).Get(ctx, "s", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("dry run stored the parent: %v", err)
	}
}
