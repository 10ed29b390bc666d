package leader_test

import (
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/testenv"
)

var env *testenv.Env

// TestMain starts one real control plane for the package and points
// $KUBECONFIG at it, so the examples run against it too.
func TestMain(m *testing.M) {
	os.Exit(testenv.RunMain(m, func(e *testenv.Env) {
		env = e
		_ = os.Setenv("KUBECONFIG", e.KubeconfigPath())
	}))
}

// newClient builds a kubekit client for the shared env (admin, or user).
func newClient(t *testing.T, user string) *client.Client {
	t.Helper()
	cfg := env.Config()
	if user != "" {
		var err error
		if cfg, err = env.UserConfig(user); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(client.WithRESTConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// verifyNoLeaks fails the test at cleanup if goroutines started during it
// are left (after idle keep-alive connections of clients are closed).
func verifyNoLeaks(t *testing.T, clients ...*client.Client) {
	t.Helper()
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			for _, c := range clients {
				utilnet.CloseIdleConnectionsFor(c.HTTPClient().Transport)
			}
			if goleak.Find(opts...) == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		goleak.VerifyNone(t, opts...)
	})
}
