package prometheus_test

import (
	"os"
	"testing"

	"github.com/kubekit/kubekit/testenv"
)

var env *testenv.Env

// TestMain starts one real control plane for the package and points
// $KUBECONFIG at it, so the example runs against it too.
func TestMain(m *testing.M) {
	os.Exit(testenv.RunMain(m, func(e *testenv.Env) {
		env = e
		_ = os.Setenv("KUBECONFIG", e.KubeconfigPath())
	}))
}
