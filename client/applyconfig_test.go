package client_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/kubekit/kubekit/client"
)

func TestApplyConfigurationOutcomesAndTypedResult(t *testing.T) {
	c := newClient(t)
	defer c.Close()
	ctx := t.Context()
	ac := applycorev1.ConfigMap("ac-demo", "default").WithLabels(map[string]string{"app": "web"}).WithData(map[string]string{"mode": "fast"})
	cm, outcome, err := client.ApplyConfiguration[*corev1.ConfigMap](ctx, c, ac)
	if err != nil {
		t.Fatal(err)
	}
	if outcome != client.Created || cm.UID == "" || cm.Data["mode"] != "fast" || cm.Labels["app"] != "web" {
		t.Fatalf("first apply: %s, %+v", outcome, cm)
	}
	if _, outcome, err = client.ApplyConfiguration[*corev1.ConfigMap](ctx, c, ac); err != nil || outcome != client.Unchanged {
		t.Fatalf("re-apply: %s, %v; want unchanged", outcome, err)
	}
	ac.WithData(map[string]string{"mode": "slow"})
	cm, outcome, err = client.ApplyConfiguration[*corev1.ConfigMap](ctx, c, ac, client.FieldManager("kubekit"))
	if err != nil || outcome != client.Configured || cm.Data["mode"] != "slow" {
		t.Fatalf("changed apply: %s, %v, %v; want configured with mode=slow", outcome, err, cm.Data)
	}
	// Only the fields set are owned: the manager owns data.mode and the label, not binaryData or immutable.
	var owned string
	for _, mf := range cm.ManagedFields {
		if mf.Manager == "kubekit" && mf.FieldsV1 != nil {
			owned = mf.FieldsV1.GetRawString()
		}
	}
	if !strings.Contains(owned, `"f:mode"`) || strings.Contains(owned, "immutable") || strings.Contains(owned, "binaryData") {
		t.Fatalf("kubekit owns %s", owned)
	}

	u, outcome, err := client.ApplyConfiguration[*unstructured.Unstructured](ctx, c, ac)
	if err != nil || outcome != client.Unchanged || u.GetUID() != cm.UID {
		t.Fatalf("unstructured result: %s, %v, %v", outcome, err, u)
	}
}

func TestApplyConfigurationBadInput(t *testing.T) {
	c := newClient(t)
	defer c.Close()
	ctx := t.Context()
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"kind mismatch", func() error {
			_, _, err := client.ApplyConfiguration[*corev1.Secret](ctx, c, applycorev1.ConfigMap("x", "default"))
			return err
		}, "is a /v1, Kind=ConfigMap, not a /v1, Kind=Secret"},
		{"nil", func() error {
			var ac *applycorev1.ConfigMapApplyConfiguration
			_, _, err := client.ApplyConfiguration[*corev1.ConfigMap](ctx, c, ac)
			return err
		}, "apply configuration is nil"},
		{"struct literal", func() error {
			_, _, err := client.ApplyConfiguration[*corev1.ConfigMap](ctx, c, &applycorev1.ConfigMapApplyConfiguration{})
			return err
		}, "has no apiVersion or kind"},
		// A delete option (GracePeriodSeconds) does not compile here:
		// testdata/nocompile, TestMisplacedOptionsDoNotCompile.
		{"nil client", func() error {
			_, _, err := client.ApplyConfiguration[*corev1.ConfigMap](ctx, nil, applycorev1.ConfigMap("x", "default"))
			return err
		}, "client is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
