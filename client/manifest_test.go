package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubekit/kubekit/client"
)

// where lists "source#index.item kind/name" for each manifest.
func where(ms []client.Manifest) []string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s#%d.%d %s", filepath.Base(m.Source), m.Index, m.Item, client.KubectlName(m.Object)))
	}
	return out
}

func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\n")
	b.WriteString("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i := 1; i < levels; i++ {
		p := fmt.Sprintf("*a%d", i-1)
		fmt.Fprintf(&b, "a%d: &a%d [%s,%s,%s,%s,%s,%s,%s,%s,%s]\n", i, i, p, p, p, p, p, p, p, p, p)
	}
	return b.String()
}

func TestManifestDecode(t *testing.T) {
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n"
	tests := []struct {
		name    string
		in      string
		opts    []client.DecodeOption
		want    []string // where() of the result
		errs    []string // substrings, in order, of the joined error
		errIs   error
		noError bool
	}{
		{name: "multi-doc with comments and empty docs",
			in:   "# header\n---\n" + fmt.Sprintf(cm, "a") + "---\n\n---   # comment\n" + fmt.Sprintf(cm, "b") + "...\n---\n",
			want: []string{"in#2.0 configmap/a", "in#4.0 configmap/b"}},
		{name: "json", in: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"}}`, want: []string{"in#1.0 deployment.apps/d"}},
		{name: "json stream", in: `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"}}
{"apiVersion":"v1","kind":"Secret","metadata":{}}  {"apiVersion":"v1","kind":"Secret","metadata":{"name":"c"}}`,
			want: []string{"in#1.1 secret/a", "in#1.3 secret/c"}, errs: []string{`document 1 item 2: Secret has no metadata.name`}},
		{name: "yaml flow mapping", in: `{apiVersion: v1, kind: Secret, metadata: {name: f}}`, want: []string{"in#1.0 secret/f"}},
		{name: "kind List", in: "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: s}}\n- {kind: Secret}\n- {apiVersion: v1, kind: Secret, metadata: {name: t}}\n",
			want: []string{"in#1.1 secret/s", "in#1.3 secret/t"}, errs: []string{`manifest "in" document 1 item 2: Secret has no apiVersion, metadata.name`}},
		{name: "typed list", in: "apiVersion: v1\nkind: ConfigMapList\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: x}}\n", want: []string{"in#1.1 configmap/x"}},
		{name: "missing fields keep going", in: "kind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: v1\nmetadata: {name: y}\n---\napiVersion: v1\nkind: ConfigMap\n---\n" + fmt.Sprintf(cm, "ok"),
			want: []string{"in#4.0 configmap/ok"},
			errs: []string{`document 1: ConfigMap has no apiVersion`, `document 2: object has no kind`, `document 3: ConfigMap has no metadata.name`}},
		{name: "invalid yaml", in: fmt.Sprintf(cm, "a") + "---\nkind: [unclosed\n---\n" + fmt.Sprintf(cm, "c"),
			want: []string{"in#1.0 configmap/a", "in#3.0 configmap/c"}, errs: []string{`manifest "in" document 2: invalid YAML or JSON`}},
		{name: "not an object", in: "- a\n- b\n", errs: []string{"document 1: a document must be a YAML or JSON object"}},
		{name: "bad apiVersion", in: "apiVersion: a/b/c\nkind: X\nmetadata: {name: x}\n", errs: []string{`invalid apiVersion "a/b/c"`}},
		{name: "bad metadata", in: "apiVersion: v1\nkind: X\nmetadata: 3\n", errs: []string{"document 1"}},
		{name: "too large", in: fmt.Sprintf(cm, "a") + "data:\n  big: " + strings.Repeat("x", 5000) + "\n---\n" + fmt.Sprintf(cm, "b"),
			opts: []client.DecodeOption{client.MaxDocumentSize(1000)}, want: []string{"in#2.0 configmap/b"},
			errs: []string{`manifest "in" document 1: document too large: over 1000 bytes`}, errIs: client.ErrDocumentTooLarge},
		{name: "huge single line", in: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":"` + strings.Repeat("y", 3<<20) + `"}}`,
			opts: []client.DecodeOption{client.MaxDocumentSize(1 << 20)}, errIs: client.ErrDocumentTooLarge, errs: []string{"document 1"}},
		{name: "alias bomb", in: aliasBomb(9), errs: []string{`manifest "in" document 1`}},
		{name: "small alias expansion over cap", in: aliasBomb(3), opts: []client.DecodeOption{client.MaxDocumentSize(1500)},
			errIs: client.ErrDocumentTooLarge, errs: []string{"expands to"}},
		{name: "empty input", in: "", noError: true},
		{name: "comments only", in: "# nothing\n---\n# still nothing\n", noError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			ms, err := client.DecodeManifests(t.Context(), strings.NewReader(tt.in), "in", tt.opts...)
			if took := time.Since(start); took > 20*time.Second {
				t.Fatalf("decoding took %v", took)
			}
			if got := where(ms); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("objects = %q, want %q", got, tt.want)
			}
			if len(tt.errs) == 0 && tt.errIs == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.errs)
			}
			msg, pos := err.Error(), 0
			for _, e := range tt.errs {
				i := strings.Index(msg[pos:], e)
				if i < 0 {
					t.Fatalf("error %q does not mention %q (in order)", msg, e)
				}
				pos += i + len(e)
			}
			var me *client.ManifestError
			if !errors.As(err, &me) || me.Source != "in" {
				t.Fatalf("error %v is not a *ManifestError naming the source", err)
			}
			if tt.errIs != nil && !errors.Is(err, tt.errIs) {
				t.Fatalf("error %v is not %v", err, tt.errIs)
			}
		})
	}
}

func TestManifestDecodeOptionsAndCancel(t *testing.T) {
	if _, err := client.DecodeManifests(t.Context(), strings.NewReader(""), "x", client.MaxDocumentSize(0)); err == nil || !strings.Contains(err.Error(), "MaxDocumentSize(0)") {
		t.Fatalf("MaxDocumentSize(0): %v", err)
	}
	if _, err := client.ReadManifests(t.Context(), []string{"-"}, client.Stdin(nil)); err == nil || !strings.Contains(err.Error(), "Stdin(nil)") {
		t.Fatalf("Stdin(nil): %v", err)
	}
	if _, err := client.ReadManifests(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "no paths") {
		t.Fatalf("no paths: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := client.DecodeManifests(ctx, strings.NewReader("apiVersion: v1\nkind: X\nmetadata: {name: x}\n"), "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestManifestRead(t *testing.T) {
	dir := filepath.Join("testdata", "manifests", "app")
	stdin := strings.NewReader("apiVersion: v1\nkind: Secret\nmetadata: {name: piped}\n")
	ms, err := client.ReadManifests(t.Context(), []string{dir, "-"}, client.Stdin(stdin))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"10-widget.yaml#1.0 gizmo.manifest.kubekit.dev/first",
		"20-crd.yaml#1.0 customresourcedefinition.apiextensions.k8s.io/gizmos.manifest.kubekit.dev",
		"30-app.yaml#3.0 configmap/settings",
		"30-app.yaml#4.0 deployment.apps/web",
		"40-namespace.json#1.0 namespace/manifest-app",
		"-#1.0 secret/piped",
	}
	if got := where(ms); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("not recursive:\n got %q\nwant %q", got, want)
	}
	ms, err = client.ReadManifests(t.Context(), []string{dir}, client.Recursive(true))
	if err != nil {
		t.Fatal(err)
	}
	if got := where(ms); len(got) != 7 || got[5] != "list.yaml#1.1 configmap/from-list-1" || got[6] != "list.yaml#1.2 clusterrole.rbac.authorization.k8s.io/manifest-reader" {
		t.Fatalf("recursive: %q", got)
	}

	// A bad file does not hide the good ones; a missing path is named.
	tmp := t.TempDir()
	bad := filepath.Join(tmp, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\nkind: ConfigMap\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(tmp, "missing.yaml")
	ms, err = client.ReadManifests(t.Context(), []string{bad, missing})
	if len(ms) != 1 || err == nil || !strings.Contains(err.Error(), `manifest "`+bad+`" document 2: ConfigMap has no apiVersion, metadata.name`) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("got %q, %v", where(ms), err)
	}
}

// outcomes lists "kind/name outcome" or "kind/name error" per result.
func outcomes(rs []client.ManifestResult) []string {
	var out []string
	for _, r := range rs {
		s := r.Name() + " " + string(r.Outcome)
		if r.Err != nil {
			s = client.KubectlName(r.Manifest.Object) + " error"
		}
		out = append(out, s)
	}
	return out
}

func TestManifestApplyDelete(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	ms, err := client.ReadManifests(ctx, []string{filepath.Join("testdata", "manifests", "app")}, client.Recursive(true))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{
		"gizmo.manifest.kubekit.dev/first", "customresourcedefinition.apiextensions.k8s.io/gizmos.manifest.kubekit.dev",
		"configmap/settings", "deployment.apps/web", "namespace/manifest-app", "configmap/from-list-1",
		"clusterrole.rbac.authorization.k8s.io/manifest-reader",
	}
	expect := func(t *testing.T, rs []client.ManifestResult, err error, outcome string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, n := range names {
			want = append(want, n+" "+outcome)
		}
		if got := outcomes(rs); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("results:\n got %q\nwant %q", got, want)
		}
	}

	// Dry run first: the namespace does not exist, so only cluster-scoped
	// kinds the server knows and the namespace itself can succeed; nothing
	// is left behind.
	rs, err := c.ApplyManifests(ctx, ms, client.DryRun(true))
	if err == nil || !rs[0].DryRun {
		t.Fatalf("dry run: %v", err)
	}
	if got := outcomes(rs); got[1] != names[1]+" created" || got[4] != names[4]+" created" || got[6] != names[6]+" created" || got[0] != names[0]+" error" {
		t.Fatalf("dry run: %q", got)
	}
	if !meta.IsNoMatchError(rs[0].Err) {
		t.Fatalf("dry-run custom resource of a CRD not yet created: %v, want a no-match error", rs[0].Err)
	}
	for _, i := range []int{1, 4, 6} {
		if err := c.Get(ctx, ms[i].Object.DeepCopy()); !apierrors.IsNotFound(err) {
			t.Fatalf("dry run left %s behind: %v", names[i], err)
		}
	}

	rs, err = c.ApplyManifests(ctx, ms)
	expect(t, rs, err, "created")
	if rs[3].Object.GetUID() == "" || rs[3].DryRun {
		t.Fatalf("result object not filled: %+v", rs[3])
	}
	rs, err = c.ApplyManifests(ctx, ms)
	expect(t, rs, err, "unchanged")
	rs, err = c.ApplyManifests(ctx, ms, client.DryRun(true))
	expect(t, rs, err, "unchanged")

	changed := make([]client.Manifest, len(ms))
	copy(changed, ms)
	changed[2].Object = ms[2].Object.DeepCopy()
	if err := unstructured.SetNestedField(changed[2].Object.Object, "green", "data", "color"); err != nil {
		t.Fatal(err)
	}
	rs, err = c.ApplyManifests(ctx, changed, client.DryRun(true))
	if err != nil || rs[2].Outcome != client.Configured || rs[3].Outcome != client.Unchanged {
		t.Fatalf("dry-run change: %q, %v", outcomes(rs), err)
	}
	rs, err = c.ApplyManifests(ctx, changed)
	if err != nil || rs[2].Outcome != client.Configured || rs[0].Outcome != client.Unchanged {
		t.Fatalf("change: %q, %v", outcomes(rs), err)
	}

	// Delete: reverse order (the CR before its CRD, objects before their
	// namespace), results in input order.
	rs, err = c.DeleteManifests(ctx, ms, client.DryRun(true))
	expect(t, rs, err, "deleted")
	if err := c.Get(ctx, ms[0].Object.DeepCopy()); err != nil {
		t.Fatalf("dry-run delete deleted: %v", err)
	}
	rs, err = c.DeleteManifests(ctx, ms)
	expect(t, rs, err, "deleted")
	rs, err = c.DeleteManifests(ctx, ms[2:4])
	if err == nil || !apierrors.IsNotFound(rs[0].Err) || !apierrors.IsNotFound(rs[1].Err) {
		t.Fatalf("second delete: %q, %v", outcomes(rs), err)
	}
	if !strings.Contains(rs[0].Err.Error(), `document 3 (configmaps manifest-app/settings): client: delete configmaps manifest-app/settings`) {
		t.Fatalf("delete error does not name the manifest: %v", rs[0].Err)
	}
}

func TestManifestErrorsInInputOrder(t *testing.T) {
	c := newClient(t)
	ns := writeNamespace(t, c, "manifest-errors")
	in := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: good-1, namespace: %[1]s}
---
apiVersion: nope.kubekit.dev/v1
kind: Unknown
metadata: {name: u}
---
apiVersion: v1
kind: Service
metadata: {name: bad-svc, namespace: %[1]s}
spec:
  type: ClusterIP1
  ports: [{port: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: missing-ns, namespace: manifest-nowhere}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: good-2, namespace: %[1]s}
`, ns)
	ms, err := client.DecodeManifests(t.Context(), strings.NewReader(in), "errors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.ApplyManifests(t.Context(), ms)
	want := []string{"configmap/good-1 created", "unknown.nope.kubekit.dev/u error", "service/bad-svc error", "configmap/missing-ns error", "configmap/good-2 created"}
	if got := outcomes(rs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("results %q, want %q", got, want)
	}
	msg := err.Error()
	iUnknown := strings.Index(msg, `manifest "errors.yaml" document 2`)
	iInvalid := strings.Index(msg, `manifest "errors.yaml" document 3 (services `+ns+`/bad-svc)`)
	iNS := strings.Index(msg, `manifest "errors.yaml" document 4`)
	if iUnknown < 0 || iInvalid < iUnknown || iNS < iInvalid {
		t.Fatalf("errors not all reported in input order:\n%s", msg)
	}
	if !meta.IsNoMatchError(rs[1].Err) || !apierrors.IsInvalid(rs[2].Err) || !apierrors.IsNotFound(rs[3].Err) {
		t.Fatalf("error types lost: %v / %v / %v", rs[1].Err, rs[2].Err, rs[3].Err)
	}
	if !strings.Contains(rs[2].Err.Error(), `spec.type: Unsupported value: "ClusterIP1"`) {
		t.Fatalf("invalid error: %v", rs[2].Err)
	}
	// A delete option (PropagationPolicy) does not compile with
	// ApplyManifests: testdata/nocompile, TestMisplacedOptionsDoNotCompile.
	if _, err := c.ApplyManifests(t.Context(), ms, client.EstablishTimeout(0)); err == nil || !strings.Contains(err.Error(), "EstablishTimeout") {
		t.Fatalf("bad timeout: %v", err)
	}
}

func TestManifestCancelledContext(t *testing.T) {
	c := newClient(t)
	ms, err := client.DecodeManifests(t.Context(), strings.NewReader(
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: never}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: never}\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, call := range []func() ([]client.ManifestResult, error){
		func() ([]client.ManifestResult, error) { return c.ApplyManifests(ctx, ms) },
		func() ([]client.ManifestResult, error) { return c.DeleteManifests(ctx, ms) },
	} {
		rs, err := call()
		if !errors.Is(err, context.Canceled) || len(rs) != 2 || !errors.Is(rs[0].Err, context.Canceled) || !errors.Is(rs[1].Err, context.Canceled) {
			t.Fatalf("cancelled: %q, %v", outcomes(rs), err)
		}
	}
}
