package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/version"

	"github.com/kubekit/kubekit/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	if os.Getenv("VERSION_TEST_MAIN") == "1" { // the test binary as the program (TestInCluster)
		main()
		os.Exit(0)
	}
	os.Exit(testenv.RunMain(m, func(e *testenv.Env) { env = e }))
}

func TestPrintsServerVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"--kubeconfig", env.KubeconfigPath(), "--context", "kubekit-testenv"}, &out, &errOut); err != nil {
		t.Fatalf("run: %v (stderr %s)", err, errOut.String())
	}
	var v version.Info
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("output is not version JSON: %v\n%s", err, out.String())
	}
	if v.GitVersion != testenv.KubernetesVersion || v.Major != "1" || v.Minor != "37" || v.Platform == "" {
		t.Fatalf("version = %+v", v)
	}
	if !strings.Contains(out.String(), "\n  \"gitVersion\": \"v1.37.2\"") {
		t.Fatalf("output is not indented JSON:\n%s", out.String())
	}
}

func TestErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing kubeconfig", []string{"--kubeconfig", missing}, "no such file"},
		{"unknown context", []string{"--kubeconfig", env.KubeconfigPath(), "--context", "nope"}, `no context "nope"`},
		{"in-cluster outside a Pod", []string{"--in-cluster"}, "in-cluster"},
		{"negative timeout", []string{"--timeout=-1s"}, "--timeout"},
		{"bad flag", []string{"--nope"}, "unknown flag: --nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBERNETES_SERVICE_HOST", "")
			var out, errOut bytes.Buffer
			err := run(t.Context(), tt.args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error()+errOut.String(), tt.want) {
				t.Fatalf("err = %v (stderr %q), want it to mention %q", err, errOut.String(), tt.want)
			}
			if out.Len() != 0 {
				t.Fatalf("stdout on error: %q", out.String())
			}
		})
	}
}

func TestTimeoutAgainstStoppedServer(t *testing.T) {
	// A kubeconfig pointing at a port nobody listens on fails quickly with
	// the reason, not after a long hang.
	e, err := testenv.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	kc := filepath.Join(t.TempDir(), "kc")
	if err := testenv.WriteKubeconfig(e.Config(), kc); err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var out, errOut bytes.Buffer
	err = run(t.Context(), []string{"--kubeconfig", kc, "--timeout", "5s"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v, want connection refused", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v", took)
	}
}

// TestHelp: --help prints the usage and is pflag.ErrHelp, which main turns
// into exit 0 without an error line.
func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"--help"}, &out, &errOut); !errors.Is(err, pflag.ErrHelp) {
		t.Fatalf("run(--help) = %v, want pflag.ErrHelp", err)
	}
	if !strings.Contains(errOut.String(), "Usage of version") {
		t.Fatalf("usage:\n%s", errOut.String())
	}
}
