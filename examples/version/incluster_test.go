package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/utils/ptr"

	"github.com/kubekit/kubekit/internal/exampletest"
	"github.com/kubekit/kubekit/testenv"
)

// saMount is where a Pod's service account credentials live.
const saMount = "/var/run/secrets/kubernetes.io/serviceaccount"

// inPod is the shell script that makes a private mount namespace look like a
// Pod's: a tmpfs over /var/run (so nothing is created on the host) holding
// the service account directory, bind-mounted from $1; then it runs the
// rest of its arguments.
const inPod = `set -e
mount -t tmpfs kubekit-pod /var/run
mkdir -p ` + saMount + `
mount --bind "$1" ` + saMount + `
shift
exec "$@"`

// TestInCluster runs the program the way a Pod runs it, without Docker: in a
// private mount namespace whose /var/run/secrets/kubernetes.io/serviceaccount
// holds a real ServiceAccount token (TokenRequest), the test CA and the
// namespace, with KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT set and
// no kubeconfig anywhere. The API server's audit log must show the
// ServiceAccount as the caller of GET /version: anyone may read /version, so
// the printed version alone would not prove the token was used.
func TestInCluster(t *testing.T) {
	requireUnshare(t)
	// (A real one, in a CI Pod, is hidden by the tmpfs over /var/run.)
	if _, err := os.Stat(saMount); os.IsNotExist(err) {
		t.Cleanup(func() {
			if _, err := os.Stat(saMount); err == nil {
				t.Errorf("%s appeared outside the mount namespace", saMount)
			}
		})
	}
	dir := t.TempDir()
	policy := filepath.Join(dir, "audit-policy.yaml")
	auditLog := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  nonResourceURLs: [/version]\n- level: None\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An API server of its own, to read its audit log. testenv configures
	// --service-account-issuer, --service-account-key-file and
	// --service-account-signing-key-file, so it issues and trusts tokens.
	e, err := testenv.Start(t.Context(), testenv.WithAPIServerFlags("--audit-policy-file="+policy, "--audit-log-path="+auditLog))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop() })
	k := exampletest.Kube(t, e.Config())
	const ns, sa = "kubekit-pod", "version-reader"
	if _, err := k.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.CoreV1().ServiceAccounts(ns).Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := k.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(e.Dir(), "ca.crt")) // testenv's CA, which signed the API server's certificate
	if err != nil {
		t.Fatal(err)
	}
	secrets := serviceAccountDir(t, map[string]string{"token": tr.Status.Token, "ca.crt": string(ca), "namespace": ns})
	u, err := url.Parse(e.Host())
	if err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{
		{"--in-cluster"},
		{}, // no kubeconfig found: the default search ends in-cluster
	} {
		out, errOut, err := runInPod(t, secrets, u, args...)
		if err != nil {
			t.Fatalf("version %v in the pod: %v\nstderr:\n%s", args, err, errOut)
		}
		var v version.Info
		if err := json.Unmarshal(out, &v); err != nil || v.GitVersion != testenv.KubernetesVersion {
			t.Fatalf("version %v printed %q (%v), want gitVersion %s", args, out, err, testenv.KubernetesVersion)
		}
	}

	want := "system:serviceaccount:" + ns + ":" + sa
	callers := waitAudit(t, auditLog, func(ev auditEvent) bool { return ev.User.Username == want }, 2)
	for _, ev := range callers {
		if ev.ResponseStatus.Code != 200 || !strings.HasPrefix(ev.UserAgent, filepath.Base(os.Args[0])) {
			t.Errorf("audit event %+v, want code 200 from the program", ev)
		}
		if !strings.Contains(strings.Join(ev.User.Groups, ","), "system:serviceaccounts:"+ns) {
			t.Errorf("caller groups %v, want system:serviceaccounts:%s", ev.User.Groups, ns)
		}
	}

	// A token the API server did not sign is refused (401), not treated as
	// anonymous: the program really sends the mounted token.
	forged := serviceAccountDir(t, map[string]string{"token": "not-a-token", "ca.crt": string(ca), "namespace": ns})
	out, errOut, err := runInPod(t, forged, u, "--in-cluster")
	if err == nil || !strings.Contains(errOut, "version: ") || !strings.Contains(errOut, "the server has asked for the client to provide credentials") || len(out) != 0 {
		t.Fatalf("with a forged token: err %v, stdout %q, stderr %q; want exit 1 and 401 Unauthorized", err, out, errOut)
	}
}

type auditEvent struct {
	Stage      string `json:"stage"`
	RequestURI string `json:"requestURI"`
	UserAgent  string `json:"userAgent"`
	User       struct {
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
	} `json:"user"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// waitAudit polls the audit log until it holds n completed GET /version
// events that match, and returns them.
func waitAudit(t *testing.T, path string, match func(auditEvent) bool, n int) []auditEvent {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var found, all []auditEvent
		if f, err := os.Open(path); err == nil {
			s := bufio.NewScanner(f)
			s.Buffer(nil, 1<<20)
			for s.Scan() {
				var ev auditEvent
				if json.Unmarshal(s.Bytes(), &ev) == nil && ev.Stage == "ResponseComplete" && ev.RequestURI == "/version" {
					all = append(all, ev)
					if match(ev) {
						found = append(found, ev)
					}
				}
			}
			_ = f.Close()
		}
		if len(found) >= n {
			return found
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s the audit log has %d matching GET /version events, want %d; all of them: %+v", len(found), n, all)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func serviceAccountDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runInPod runs this test binary as the program (see TestMain) inside a
// private mount namespace with secrets mounted at saMount.
func runInPod(t *testing.T, secrets string, api *url.URL, args ...string) ([]byte, string, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", inPod, "sh", secrets, exe}, args...)...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(), // no ~/.kube/config
		"VERSION_TEST_MAIN=1",
		"KUBERNETES_SERVICE_HOST=" + api.Hostname(),
		"KUBERNETES_SERVICE_PORT=" + api.Port(),
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.Bytes(), errOut.String(), err
}

// requireUnshare skips the test only where a private mount namespace cannot
// be made, saying why.
func requireUnshare(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("mount namespaces are Linux-only (GOOS=%s)", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		t.Skip("unshare --mount and mount need root (CAP_SYS_ADMIN); CI runs as root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skipf("unshare (util-linux) is not installed: %v", err)
	}
	if out, err := exec.CommandContext(t.Context(), "unshare", "--mount", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("this machine refuses a private mount namespace (a container without CAP_SYS_ADMIN?): %v: %s", err, out)
	}
}
