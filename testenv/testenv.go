package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubernetesVersion is the version of kube-apiserver that hack/testbin builds.
const KubernetesVersion = "v1.37.2"

// AssetsEnv names a directory holding kube-apiserver and etcd; Start looks
// there when no [WithBinaryDir] is given. "make testbin" writes there too.
const AssetsEnv = "KUBEKIT_ASSETS"

// KubebuilderAssetsEnv is setup-envtest's variable (a directory with
// kube-apiserver, etcd and kubectl side by side); Start looks there after
// $KUBEKIT_ASSETS, so binaries an envtest user already has work unchanged.
const KubebuilderAssetsEnv = "KUBEBUILDER_ASSETS"

// Option configures [Start].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	binDir        string
	crdFiles      []string
	crds          []runtime.Object
	users         []User
	apiFlags      []string
	startTimeout  time.Duration
	stopGrace     time.Duration
	dir           string
	keepDirOnStop bool
}

// WithAPIServerFlags adds flags to every kube-apiserver start (later flags win
// over the defaults), e.g. "--min-request-timeout=5" or "--watch-cache=false".
func WithAPIServerFlags(flags ...string) Option {
	return optionFunc(func(o *options) { o.apiFlags = append(o.apiFlags, flags...) })
}

// WithBinaryDir sets the directory holding the kube-apiserver and etcd
// binaries. Default: $KUBEKIT_ASSETS, else $KUBEBUILDER_ASSETS, else
// bin/k8s-<version> in the kubekit repository (see [BinaryDir]).
func WithBinaryDir(dir string) Option { return optionFunc(func(o *options) { o.binDir = dir }) }

// WithCRDs installs these CustomResourceDefinitions (typed
// *apiextensionsv1.CustomResourceDefinition or unstructured) during Start and
// waits until each is Established. Default: none.
func WithCRDs(crds ...runtime.Object) Option {
	return optionFunc(func(o *options) { o.crds = append(o.crds, crds...) })
}

// WithCRDFiles installs the CustomResourceDefinitions in these YAML or JSON
// files (several documents per file allowed) during Start and waits until each
// is Established. Default: none.
func WithCRDFiles(paths ...string) Option {
	return optionFunc(func(o *options) { o.crdFiles = append(o.crdFiles, paths...) })
}

// User is a user with limited RBAC for [WithUsers]: Start creates a
// ClusterRole "testenv:<Name>" with Rules and binds it to Name cluster-wide.
// [Env.UserConfig] and [Env.UserKubeconfigPath] then authenticate as Name.
// With no Rules the user may do nothing but discovery, which makes Forbidden
// paths testable.
type User struct {
	Name   string
	Groups []string
	Rules  []rbacv1.PolicyRule
}

// WithUsers creates users with limited RBAC during Start (see [User]).
// Default: only the admin user, which is in group system:masters.
func WithUsers(users ...User) Option {
	return optionFunc(func(o *options) { o.users = append(o.users, users...) })
}

// WithStartTimeout bounds how long Start waits for readiness. Default 90s.
func WithStartTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.startTimeout = d })
}

// WithStopGrace is how long Stop waits after SIGTERM before SIGKILL. Default 10s.
func WithStopGrace(d time.Duration) Option { return optionFunc(func(o *options) { o.stopGrace = d }) }

// WithDir sets the working directory (certificates, etcd data, logs). Default:
// a new temporary directory, removed by Stop. A directory given here is kept.
func WithDir(dir string) Option {
	return optionFunc(func(o *options) { o.dir = dir; o.keepDirOnStop = true })
}

// Env is a running etcd plus kube-apiserver on loopback.
type Env struct {
	opts      options
	dir       string
	pki       *pki
	etcdURL   string
	etcdPeer  string
	apiPort   int
	host      string
	adminCfg  *rest.Config
	kubecfg   string
	mu        sync.Mutex
	etcd      *process
	apiserver *process
	pids      []int
}

// Start builds certificates, starts etcd and kube-apiserver on free loopback
// ports and waits until the API server is ready. Call Stop when done; even if
// you do not, both processes die with the calling process.
func Start(ctx context.Context, opts ...Option) (_ *Env, err error) {
	o := options{startTimeout: 90 * time.Second, stopGrace: 10 * time.Second}
	for _, opt := range opts {
		opt.apply(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.binDir, err = findBinaries(o.binDir); err != nil {
		return nil, err
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "kubekit-testenv-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	e := &Env{opts: o, dir: dir}
	defer func() {
		if err != nil {
			_ = e.Stop()
		}
	}()
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	e.etcdURL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	e.etcdPeer = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	e.apiPort = ports[2]
	e.host = fmt.Sprintf("https://127.0.0.1:%d", e.apiPort)
	if err := e.writePKI(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.startTimeout)
	defer cancel()
	if err := e.startEtcd(ctx); err != nil {
		return nil, err
	}
	if err := e.StartAPIServer(ctx); err != nil {
		return nil, err
	}
	if err := e.setUp(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// BinaryDir is where Start finds kube-apiserver and etcd when no
// [WithBinaryDir] is given: $KUBEKIT_ASSETS, else $KUBEBUILDER_ASSETS, else
// bin/k8s-<version> in the kubekit repository (found above the working
// directory, or beside this package's source when kubekit is a local replace).
// It returns the first of these that holds both binaries, or an error that
// names every place tried and how to get the binaries.
func BinaryDir() (string, error) { return findBinaries("") }

func findBinaries(explicit string) (string, error) {
	type place struct{ dir, from string }
	var places []place
	if explicit != "" {
		places = append(places, place{explicit, "WithBinaryDir"})
	} else {
		for _, env := range []string{AssetsEnv, KubebuilderAssetsEnv} {
			if d := os.Getenv(env); d != "" {
				places = append(places, place{d, "$" + env})
			}
		}
		for _, root := range repoRoots() {
			places = append(places, place{filepath.Join(root, "bin", "k8s-"+KubernetesVersion), "the kubekit repository"})
		}
	}
	var tried []string
	for _, p := range places {
		missing := missingBinaries(p.dir)
		if len(missing) == 0 {
			return p.dir, nil
		}
		tried = append(tried, fmt.Sprintf("%s (%s): no %s", p.dir, p.from, strings.Join(missing, ", no ")))
	}
	if len(tried) == 0 {
		tried = append(tried, fmt.Sprintf("$%s and $%s are unset and no kubekit repository was found", AssetsEnv, KubebuilderAssetsEnv))
	}
	return "", fmt.Errorf("testenv: kube-apiserver and etcd not found; tried:\n  %s\n"+
		"get them with \"make testbin\" in a kubekit clone (builds %s into bin/k8s-%s), "+
		"or with setup-envtest (\"setup-envtest use -p path\", then set $%s to the directory it prints), "+
		"or pass testenv.WithBinaryDir", strings.Join(tried, "\n  "), KubernetesVersion, KubernetesVersion, KubebuilderAssetsEnv)
}

func missingBinaries(dir string) []string {
	var missing []string
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	return missing
}

// repoRoots returns the kubekit repository roots above the working directory
// and above this source file (a replace to a local clone), without duplicates.
func repoRoots() []string {
	var starts, roots []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := goruntime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, start := range starts {
		for d := start; ; d = filepath.Dir(d) {
			data, err := os.ReadFile(filepath.Join(d, "go.mod"))
			if err == nil && bytes.HasPrefix(data, []byte("module github.com/kubekit/kubekit\n")) {
				if !slices.Contains(roots, d) {
					roots = append(roots, d)
				}
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return roots
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("testenv: find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (e *Env) writePKI() error {
	p, err := newPKI()
	if err != nil {
		return err
	}
	e.pki = p
	srvCert, srvKey, err := p.issue("kube-apiserver", nil, []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"})
	if err != nil {
		return err
	}
	if err := writeFiles(e.dir, map[string][]byte{"ca.crt": p.caPEM, "apiserver.crt": srvCert, "apiserver.key": srvKey}); err != nil {
		return err
	}
	if err := writeServiceAccountKey(filepath.Join(e.dir, "sa.key")); err != nil {
		return err
	}
	e.adminCfg, err = e.UserConfig("kubekit-admin", "system:masters")
	if err != nil {
		return err
	}
	e.kubecfg = filepath.Join(e.dir, "kubeconfig")
	return WriteKubeconfig(e.adminCfg, e.kubecfg)
}

// WriteKubeconfig writes cfg (host, CA and client certificate) as a kubeconfig
// file whose current context is "kubekit-testenv".
func WriteKubeconfig(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubekit-testenv"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["kubekit-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["kubekit-testenv"] = &clientcmdapi.Context{Cluster: "kubekit-testenv", AuthInfo: "kubekit-admin", Namespace: "default"}
	kc.CurrentContext = "kubekit-testenv"
	return clientcmd.WriteToFile(*kc, path)
}

// UserConfig returns a rest.Config that authenticates as user (member of
// groups) with a client certificate. Without the "system:masters" group the
// user has only what RBAC grants, which makes 401/403 paths testable.
func (e *Env) UserConfig(user string, groups ...string) (*rest.Config, error) {
	cert, key, err := e.pki.issue(user, groups, nil, nil)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host:            e.host,
		TLSClientConfig: rest.TLSClientConfig{CAData: e.pki.caPEM, CertData: cert, KeyData: key},
		QPS:             -1, // tests write thousands of objects; the server's APF protects it
	}, nil
}

// Config returns a copy of the admin rest.Config.
func (e *Env) Config() *rest.Config { return rest.CopyConfig(e.adminCfg) }

// KubeconfigPath returns the path of a kubeconfig file with admin
// credentials (context "kubekit-testenv", namespace "default"), for programs
// and kubectl under test.
func (e *Env) KubeconfigPath() string { return e.kubecfg }

// Host returns the API server URL, e.g. https://127.0.0.1:41234.
func (e *Env) Host() string { return e.host }

// EtcdURL returns etcd's client URL.
func (e *Env) EtcdURL() string { return e.etcdURL }

// Dir returns the working directory (certificates, data, logs).
func (e *Env) Dir() string { return e.dir }

// PIDs returns the process IDs of every etcd and kube-apiserver this Env
// started, including ones already stopped.
func (e *Env) PIDs() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.pids...)
}

func (e *Env) startEtcd(ctx context.Context) error {
	args := []string{
		"--name=default",
		"--data-dir=" + filepath.Join(e.dir, "etcd"),
		"--listen-client-urls=" + e.etcdURL,
		"--advertise-client-urls=" + e.etcdURL,
		"--listen-peer-urls=" + e.etcdPeer,
		"--initial-advertise-peer-urls=" + e.etcdPeer,
		"--initial-cluster=default=" + e.etcdPeer,
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	}
	p, err := startProcess("etcd", filepath.Join(e.opts.binDir, "etcd"), args, filepath.Join(e.dir, "etcd.log"))
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.etcd = p
	e.pids = append(e.pids, p.pid())
	e.mu.Unlock()
	hc := &http.Client{Timeout: 2 * time.Second}
	return poll(ctx, p, func() bool {
		resp, err := hc.Get(e.etcdURL + "/health")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// StartAPIServer starts kube-apiserver on the Env's address with the Env's
// flags plus extraFlags (which win), and waits until it is ready. It fails if
// the API server is already running.
func (e *Env) StartAPIServer(ctx context.Context, extraFlags ...string) error {
	e.mu.Lock()
	if e.apiserver != nil && !e.apiserver.exited() {
		e.mu.Unlock()
		return errors.New("testenv: kube-apiserver is already running; call StopAPIServer first")
	}
	e.mu.Unlock()
	d := e.dir
	args := []string{
		"--etcd-servers=" + e.etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(e.apiPort),
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(d, "apiserver-certs"),
		"--tls-cert-file=" + filepath.Join(d, "apiserver.crt"),
		"--tls-private-key-file=" + filepath.Join(d, "apiserver.key"),
		"--client-ca-file=" + filepath.Join(d, "ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(d, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(d, "sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		"--v=1",
	}
	args = append(args, e.opts.apiFlags...)
	args = append(args, extraFlags...)
	p, err := startProcess("kube-apiserver", filepath.Join(e.opts.binDir, "kube-apiserver"), args, filepath.Join(d, "kube-apiserver.log"))
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.apiserver = p
	e.pids = append(e.pids, p.pid())
	e.mu.Unlock()
	hc, err := e.httpClient()
	if err != nil {
		return err
	}
	defer hc.CloseIdleConnections()
	if err := poll(ctx, p, func() bool {
		// Ready means /readyz is ok and the "default" namespace exists, which a
		// bootstrap controller creates shortly after the server starts serving.
		for _, path := range []string{"/readyz", "/api/v1/namespaces/default"} {
			resp, err := hc.Get(e.host + path)
			if err != nil {
				return false
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false
			}
		}
		return true
	}); err != nil {
		_ = p.stop(e.opts.stopGrace)
		return err
	}
	return nil
}

// StopAPIServer stops kube-apiserver (SIGTERM, then SIGKILL after the stop
// grace period) and keeps etcd and its data.
func (e *Env) StopAPIServer() error {
	e.mu.Lock()
	p := e.apiserver
	e.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.stop(e.opts.stopGrace)
}

// KillAPIServer kills kube-apiserver with SIGKILL, as a crash or an OOM kill
// would, and waits until it is gone; etcd and its data stay. Clients see
// connection errors until [Env.StartAPIServer] starts it again on the same
// address.
func (e *Env) KillAPIServer() error {
	e.mu.Lock()
	p := e.apiserver
	e.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.kill()
}

// RestartAPIServer stops the API server and starts it again on the same
// address with extraFlags added to this start only. Clients keep working: they
// see connection errors while it is down.
func (e *Env) RestartAPIServer(ctx context.Context, extraFlags ...string) error {
	if err := e.StopAPIServer(); err != nil {
		return err
	}
	return e.StartAPIServer(ctx, extraFlags...)
}

// Stop stops kube-apiserver and etcd and removes the working directory unless
// it was given with WithDir. It is safe to call more than once.
func (e *Env) Stop() error {
	e.mu.Lock()
	api, etcd := e.apiserver, e.etcd
	e.mu.Unlock()
	var errs []error
	if api != nil {
		errs = append(errs, api.stop(e.opts.stopGrace))
	}
	if etcd != nil {
		errs = append(errs, etcd.stop(e.opts.stopGrace))
	}
	if !e.opts.keepDirOnStop && e.dir != "" {
		errs = append(errs, os.RemoveAll(e.dir))
	}
	return errors.Join(errs...)
}

func (e *Env) httpClient() (*http.Client, error) {
	cert, err := tls.X509KeyPair(e.adminCfg.CertData, e.adminCfg.KeyData)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.pki.caPEM)
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 5 * time.Second,
		},
	}, nil
}

// poll calls ready every 100ms until it returns true, the process exits, or
// ctx ends. Errors carry the tail of the process log.
func poll(ctx context.Context, p *process, ready func() bool) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if ready() {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("testenv: %s exited before it was ready (%v); last log lines:\n%s", p.name, p.waitErr, p.logTail(30))
		case <-ctx.Done():
			return fmt.Errorf("testenv: %s not ready: %w; last log lines:\n%s", p.name, ctx.Err(), p.logTail(30))
		case <-t.C:
		}
	}
}

// CompactEtcd compacts etcd's history up to its current revision and returns
// that revision. The API server's watch cache still serves recent
// resourceVersions afterwards; use [Env.Compact] to make them answer 410 Gone.
func (e *Env) CompactEtcd(ctx context.Context) (int64, error) {
	var rng struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	if err := e.etcdPost(ctx, "/v3/kv/range", `{"key":"AA=="}`, &rng); err != nil {
		return 0, err
	}
	rev, err := strconv.ParseInt(rng.Header.Revision, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("testenv: etcd revision %q: %w", rng.Header.Revision, err)
	}
	body := fmt.Sprintf(`{"revision":"%d","physical":true}`, rev)
	if err := e.etcdPost(ctx, "/v3/kv/compaction", body, nil); err != nil {
		return 0, err
	}
	return rev, nil
}

// Compact compacts etcd up to its current revision and restarts the API
// server on the same address, so that its watch cache forgets too: afterwards
// every resourceVersion and continue token from before the call is answered
// with 410 Gone (a watch gets an ERROR event with code 410, a list a 410
// Status), as after a real compaction outran a client.
func (e *Env) Compact(ctx context.Context) error {
	if _, err := e.CompactEtcd(ctx); err != nil {
		return err
	}
	return e.RestartAPIServer(ctx)
}

func (e *Env) etcdPost(ctx context.Context, path, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.etcdURL+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("testenv: etcd %s: %w", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("testenv: etcd %s: %s: %s", path, resp.Status, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// ProcessAlive reports whether pid names a live (not zombie) process.
func ProcessAlive(pid int) bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if state, ok := strings.CutPrefix(sc.Text(), "State:"); ok {
			return !strings.Contains(state, "Z")
		}
	}
	return false
}
