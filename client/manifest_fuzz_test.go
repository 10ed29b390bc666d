package client_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/kubekit/kubekit/client"
)

// FuzzDecodeManifests feeds arbitrary bytes to the manifest decoder: it must
// never panic or hang, every object it returns must have apiVersion, kind and
// a name, and every error must name the source. The seed corpus
// (testdata/fuzz/FuzzDecodeManifests plus the f.Add calls) runs with go test.
func FuzzDecodeManifests(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# c\n---\n{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\"}}\n",
		"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: p}}\n- 3\n",
		"kind: [\n",
		"---\n---\n...\n",
		"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: 7\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := client.DecodeManifests(t.Context(), bytes.NewReader(data), "fuzz.yaml", client.MaxDocumentSize(64<<10))
		for _, m := range ms {
			if m.Object == nil || m.Object.GetAPIVersion() == "" || m.Object.GetKind() == "" || m.Object.GetName() == "" || m.Index < 1 {
				t.Fatalf("incomplete object %+v from %q", m, data)
			}
		}
		if err != nil {
			var me *client.ManifestError
			if !errors.As(err, &me) || !strings.Contains(err.Error(), `"fuzz.yaml" document`) {
				t.Fatalf("error %v does not name the source and document", err)
			}
		}
	})
}
