package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubekit/kubekit/client"
)

func TestWaitReadyAndBadInput(t *testing.T) {
	c := newClient(t)
	defer c.Close()
	ctx := t.Context()
	ns := writeNamespace(t, c, "wait-ready-lib")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "there"}}
	if err := c.Create(ctx, cm, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	rs, err := c.Wait(ctx, []client.Object{&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "there"}}}, client.ForReady(), client.InNamespace(ns))
	if err != nil || len(rs) != 1 || rs[0].Status != client.Current || !rs[0].Done || rs[0].Name != "configmap/there" {
		t.Fatalf("Wait ready on a ConfigMap: %+v, %v", rs, err)
	}

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	missing := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "missing", Namespace: ns}}
	_, err = c.Wait(short, []client.Object{cm, missing}, client.ForReady(), client.PollInterval(20*time.Millisecond))
	var werr *client.WaitError
	if !errors.As(err, &werr) || len(werr.Pending) != 1 || werr.Pending[0].Status != client.NotFound || !strings.Contains(err.Error(), "configmap/missing (NotFound)") {
		t.Fatalf("Wait ready on a missing object: %v; want a *WaitError naming configmap/missing as NotFound", err)
	}

	bad := []struct {
		name string
		cond client.Condition
		opts []client.WaitOption
		want string
	}{
		{"zero interval", client.ForReady(), []client.WaitOption{client.PollInterval(0)}, "client: PollInterval(0s): must be positive"},
		{"empty condition", client.Condition{}, nil, "the Condition is empty"},
		{"condition without a type", client.ForCondition("=True"), nil, `ForCondition("=True")`},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			if _, err := c.Wait(ctx, []client.Object{cm}, b.cond, b.opts...); err == nil || !strings.Contains(err.Error(), b.want) {
				t.Fatalf("got %v, want an error containing %q", err, b.want)
			}
		})
	}
}
