package client_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubekit/kubekit/client"
)

// What must compile: every option with every verb the table in doc.go says
// takes it. TestOptionsPerVerb checks the other half (no option implements
// more), TestMisplacedOptionsDoNotCompile that a misplaced one is a compile
// error.
var (
	_ client.CreateOption          = client.DryRun(true)
	_ client.UpdateOption          = client.DryRun(true)
	_ client.PatchOption           = client.DryRun(true)
	_ client.ApplyOption           = client.DryRun(true)
	_ client.StatusApplyOption     = client.DryRun(true)
	_ client.DeleteOption          = client.DryRun(true)
	_ client.DeleteAllOfOption     = client.DryRun(true)
	_ client.EvictOption           = client.DryRun(true)
	_ client.ApplyManifestsOption  = client.DryRun(true)
	_ client.CreateOption          = client.FieldManager("m")
	_ client.UpdateOption          = client.FieldManager("m")
	_ client.PatchOption           = client.FieldManager("m")
	_ client.ApplyOption           = client.FieldManager("m")
	_ client.StatusApplyOption     = client.FieldManager("m")
	_ client.ApplyManifestsOption  = client.FieldManager("m")
	_ client.DiffOption            = client.FieldManager("m")
	_ client.CreateOption          = client.FieldValidation("Strict")
	_ client.UpdateOption          = client.FieldValidation("Strict")
	_ client.PatchOption           = client.FieldValidation("Strict")
	_ client.ApplyOption           = client.FieldValidation("Strict")
	_ client.StatusApplyOption     = client.FieldValidation("Strict")
	_ client.ApplyManifestsOption  = client.FieldValidation("Strict")
	_ client.DiffOption            = client.FieldValidation("Strict")
	_ client.ApplyOption           = client.ForceOwnership(true)
	_ client.StatusApplyOption     = client.ForceOwnership(true)
	_ client.ApplyManifestsOption  = client.ForceOwnership(true)
	_ client.DiffOption            = client.ForceOwnership(true)
	_ client.ApplyOption           = client.Recreate(true)
	_ client.ApplyManifestsOption  = client.Recreate(true)
	_ client.GetOption             = client.InNamespace("ns")
	_ client.CreateOption          = client.InNamespace("ns")
	_ client.UpdateOption          = client.InNamespace("ns")
	_ client.PatchOption           = client.InNamespace("ns")
	_ client.ApplyOption           = client.InNamespace("ns")
	_ client.StatusApplyOption     = client.InNamespace("ns")
	_ client.DeleteOption          = client.InNamespace("ns")
	_ client.DeleteAllOfOption     = client.InNamespace("ns")
	_ client.EvictOption           = client.InNamespace("ns")
	_ client.ApplyManifestsOption  = client.InNamespace("ns")
	_ client.DiffOption            = client.InNamespace("ns")
	_ client.DeleteOption          = client.PropagationPolicy("Orphan")
	_ client.DeleteAllOfOption     = client.PropagationPolicy("Orphan")
	_ client.DeleteOption          = client.GracePeriodSeconds(0)
	_ client.DeleteOption          = client.Preconditions{}
	_ client.DeleteManifestsOption = client.GracePeriodSeconds(0)
	_ client.DeleteAllOfOption     = client.GracePeriodSeconds(0)
	_ client.EvictOption           = client.GracePeriodSeconds(0)
	_ client.ApplyManifestsOption  = client.EstablishTimeout(time.Second)
	_ client.ApplyManifestsOption  = client.Concurrency(1)
	_ client.DeleteAllOfOption     = client.LabelSelector("a=b")
	_ client.DeleteAllOfOption     = client.FieldSelector("metadata.name=x")
	_ client.ListOption            = client.LabelSelector("a=b")
	_ client.ListOption            = client.FieldSelector("metadata.name=x")
	_ client.WaitOption            = client.InNamespace("ns")
)

// verbOptions are the per-verb option interfaces, by verb name as doc.go's
// table names them.
var verbOptions = map[string]reflect.Type{
	"Get":             reflect.TypeFor[client.GetOption](),
	"Create":          reflect.TypeFor[client.CreateOption](),
	"Update":          reflect.TypeFor[client.UpdateOption](),
	"Patch":           reflect.TypeFor[client.PatchOption](),
	"Apply":           reflect.TypeFor[client.ApplyOption](),
	"StatusApply":     reflect.TypeFor[client.StatusApplyOption](),
	"Delete":          reflect.TypeFor[client.DeleteOption](),
	"DeleteManifests": reflect.TypeFor[client.DeleteManifestsOption](),
	"DeleteAllOf":     reflect.TypeFor[client.DeleteAllOfOption](),
	"Evict":           reflect.TypeFor[client.EvictOption](),
	"ApplyManifests":  reflect.TypeFor[client.ApplyManifestsOption](),
	"Diff":            reflect.TypeFor[client.DiffOption](),
}

// TestOptionsPerVerb checks every option type against every verb: it
// implements exactly the verbs of doc.go's table.
func TestOptionsPerVerb(t *testing.T) {
	for _, tt := range []struct {
		opt   any
		verbs string
	}{
		{client.DryRun(true), "Create Update Patch Apply StatusApply Delete DeleteManifests DeleteAllOf Evict ApplyManifests"},
		{client.FieldManager("m"), "Create Update Patch Apply StatusApply ApplyManifests Diff"},
		{client.FieldValidation("Strict"), "Create Update Patch Apply StatusApply ApplyManifests Diff"},
		{client.ForceOwnership(true), "Apply StatusApply ApplyManifests Diff"},
		{client.Recreate(true), "Apply ApplyManifests"},
		{client.InNamespace("ns"), "Get Create Update Patch Apply StatusApply Delete DeleteManifests DeleteAllOf Evict ApplyManifests Diff"},
		{client.PropagationPolicy("Orphan"), "Delete DeleteManifests DeleteAllOf"},
		{client.GracePeriodSeconds(0), "Delete DeleteManifests DeleteAllOf Evict"},
		{client.Preconditions{}, "Delete"},
		{client.EstablishTimeout(time.Second), "ApplyManifests"},
		{client.Concurrency(1), "ApplyManifests"},
		{client.LabelSelector("a=b"), "DeleteAllOf"},
		{client.FieldSelector("metadata.name=x"), "DeleteAllOf"},
	} {
		want := strings.Fields(tt.verbs)
		for verb, iface := range verbOptions {
			got := reflect.TypeOf(tt.opt).Implements(iface)
			if got != slices.Contains(want, verb) {
				t.Errorf("%T implements %s = %v, want %v", tt.opt, iface, got, !got)
			}
		}
	}
}

// TestMisplacedOptionsDoNotCompile builds testdata/nocompile, where every
// line marked "// want: TEXT" passes an option to a verb that does not take
// it, or a value type argument where kubekit wants a pointer: each must be
// a compile error at that line mentioning TEXT, and there must be no other.
func TestMisplacedOptionsDoNotCompile(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	src := filepath.Join("testdata", "nocompile", "main.go")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{}
	for i, line := range strings.Split(string(data), "\n") {
		if _, text, ok := strings.Cut(line, "// want: "); ok {
			want[i+1] = text
		}
	}
	if len(want) == 0 {
		t.Fatal("no // want: lines in " + src)
	}
	cmd := exec.CommandContext(t.Context(), gobin, "build", "-gcflags=-e", "-o", os.DevNull, "./testdata/nocompile")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("testdata/nocompile compiled; want %d errors", len(want))
	}
	got := map[int]string{}
	re := regexp.MustCompile(`(?m)^testdata/nocompile/main\.go:(\d+):\d+: (.*)$`)
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		n, _ := strconv.Atoi(m[1])
		got[n] += m[2] + "\n"
	}
	if len(got) == 0 {
		t.Fatalf("no compile errors in testdata/nocompile (build failed otherwise?):\n%s", out)
	}
	for line, text := range want {
		if !strings.Contains(got[line], text) {
			t.Errorf("line %d: compile error %q, want one mentioning %q", line, got[line], text)
		}
	}
	for line, msg := range got {
		if _, ok := want[line]; !ok {
			t.Errorf("line %d: unexpected compile error %q", line, msg)
		}
	}
}
