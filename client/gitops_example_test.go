package client_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kubekit/kubekit/client"
)

// The GitOps loop: diff, apply with prune, wait until ready.
func ExampleClient_ApplyAndPrune() {
	ctx := context.Background()
	c, err := client.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	const ns = "example-gitops"
	nsm, _ := client.DecodeManifests(ctx, strings.NewReader("apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n"), "ns.yaml")
	if _, err := c.ApplyManifests(ctx, nsm); err != nil {
		fmt.Println(err)
		return
	}
	set := client.ApplySet{Name: "shop", Namespace: ns} // kubectl's --applyset=shop -n example-gitops
	for _, commit := range []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flags}\ndata: {beta: \"on\"}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: old-flags}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flags}\ndata: {beta: \"off\"}\n",
	} {
		ms, err := client.DecodeManifests(ctx, strings.NewReader(commit), "repo.yaml")
		if err != nil {
			fmt.Println(err)
			return
		}
		diffs, err := c.Diff(ctx, ms, client.InNamespace(ns))
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, d := range diffs {
			fmt.Println("diff:", client.KubectlName(d.Object), d.Changed())
		}
		applied, pruned, err := c.ApplyAndPrune(ctx, set, ms, client.InNamespace(ns))
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, r := range append(applied, pruned...) {
			fmt.Println(r.Name(), r.Outcome)
		}
		objs := make([]client.Object, len(applied))
		for i, r := range applied {
			objs[i] = r.Object
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		results, err := c.Wait(wctx, objs, client.ForReady())
		cancel()
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, r := range results {
			fmt.Println(r.Name, r.Status)
		}
	}
	// Output:
	// diff: configmap/flags true
	// diff: configmap/old-flags true
	// configmap/flags created
	// configmap/old-flags created
	// configmap/flags Current
	// configmap/old-flags Current
	// diff: configmap/flags true
	// configmap/flags configured
	// configmap/old-flags pruned
	// configmap/flags Current
}
