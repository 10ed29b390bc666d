package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Client bundles the client-go clients for one API server, built once from
// one configuration and sharing one HTTP connection pool. It is safe for
// concurrent use.
type Client struct {
	cfg        *rest.Config // as resolved, with kubekit's settings applied
	httpClient *http.Client
	namespace  string
	source     string
	log        logr.Logger

	kube      *kubernetes.Clientset
	dyn       *dynamic.DynamicClient
	meta      metadata.Interface
	discovery discovery.CachedDiscoveryInterface
	mapper    *refreshingMapper
}

// New builds a Client. Without a source option it looks, in order, at
// $KUBECONFIG (a list of files merged as kubectl merges them), ~/.kube/config,
// and the in-cluster service account when $KUBERNETES_SERVICE_HOST is set;
// the error lists what was tried when none applies.
func New(opts ...Option) (*Client, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.getenv == nil {
		o.getenv = os.Getenv
	}
	if o.homeDir == nil {
		o.homeDir = os.UserHomeDir
	}
	if o.inClusterConfig == nil {
		o.inClusterConfig = rest.InClusterConfig
	}
	cfg, ns, source, err := resolve(&o)
	if err != nil {
		return nil, err
	}
	if err := checkConfig(cfg, source); err != nil {
		return nil, err
	}
	applySettings(cfg, &o)
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("client: build HTTP client for %s: %w", source, err)
	}
	c := &Client{cfg: cfg, httpClient: hc, namespace: ns, source: source, log: o.logger}
	if c.kube, err = kubernetes.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if c.dyn, err = dynamic.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if c.meta, err = metadata.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c.discovery = memory.NewMemCacheClient(dc)
	c.mapper = newRefreshingMapper(c.discovery, o.logger)
	o.logger.V(1).Info("kubernetes client configured", "source", source, "host", cfg.Host, "namespace", ns)
	return c, nil
}

// resolve finds the rest.Config, the default namespace and a description of
// where they came from.
func resolve(o *options) (*rest.Config, string, string, error) {
	switch {
	case o.restConfig != nil:
		return o.restConfig, metav1NamespaceDefault, "rest.Config", nil
	case o.inCluster:
		return inCluster(o)
	case o.kubeconfigSet:
		if _, err := os.Stat(o.kubeconfig); err != nil {
			return nil, "", "", fmt.Errorf("client: kubeconfig %s: %w (check the path given to WithKubeconfig/--kubeconfig)", o.kubeconfig, err)
		}
		return fromKubeconfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: o.kubeconfig}, o.context, o.kubeconfig)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	var tried []string
	if env := o.getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
		rules.Precedence = filepath.SplitList(env)
		var found []string
		for _, p := range rules.Precedence {
			if _, err := os.Stat(p); err == nil {
				found = append(found, p)
			}
		}
		if len(found) > 0 {
			return fromKubeconfig(rules, o.context, "$KUBECONFIG="+env)
		}
		tried = append(tried, fmt.Sprintf("$KUBECONFIG=%s (no such file)", env))
	} else {
		tried = append(tried, "$KUBECONFIG (unset)")
		home, err := o.homeDir()
		if err == nil && home != "" {
			p := filepath.Join(home, clientcmd.RecommendedHomeDir, clientcmd.RecommendedFileName)
			if _, err := os.Stat(p); err == nil {
				rules.Precedence = []string{p}
				return fromKubeconfig(rules, o.context, p)
			}
			tried = append(tried, p+" (no such file)")
		} else {
			tried = append(tried, "~/.kube/config (no home directory)")
		}
	}
	if o.getenv("KUBERNETES_SERVICE_HOST") != "" {
		if o.context != "" {
			return nil, "", "", fmt.Errorf("client: context %q requested but no kubeconfig was found (tried %s) and in-cluster configuration has no contexts", o.context, strings.Join(tried, ", "))
		}
		return inCluster(o)
	}
	tried = append(tried, "in-cluster ($KUBERNETES_SERVICE_HOST unset)")
	return nil, "", "", fmt.Errorf("client: no Kubernetes configuration found: tried %s; use WithKubeconfig(path), set $KUBECONFIG, or run inside a Pod",
		strings.Join(tried, ", "))
}

const (
	metav1NamespaceDefault = "default"
	serviceAccountNSFile   = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

func inCluster(o *options) (*rest.Config, string, string, error) {
	cfg, err := o.inClusterConfig()
	if err != nil {
		if errors.Is(err, rest.ErrNotInCluster) {
			return nil, "", "", fmt.Errorf("client: in-cluster configuration: %w (run inside a Pod, or use a kubeconfig instead of WithInCluster/--in-cluster)", err)
		}
		return nil, "", "", fmt.Errorf("client: in-cluster configuration: %w", err)
	}
	ns := metav1NamespaceDefault
	if data, err := os.ReadFile(serviceAccountNSFile); err == nil && len(strings.TrimSpace(string(data))) > 0 {
		ns = strings.TrimSpace(string(data))
	}
	return cfg, ns, "in-cluster service account", nil
}

func fromKubeconfig(rules *clientcmd.ClientConfigLoadingRules, kubeContext, source string) (*rest.Config, string, string, error) {
	overrides := &clientcmd.ConfigOverrides{CurrentContext: kubeContext}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, "", "", fmt.Errorf("client: load kubeconfig %s: %w", source, err)
	}
	if kubeContext != "" {
		if _, ok := raw.Contexts[kubeContext]; !ok {
			names := make([]string, 0, len(raw.Contexts))
			for n := range raw.Contexts {
				names = append(names, n)
			}
			return nil, "", "", fmt.Errorf("client: kubeconfig %s has no context %q (it has: %s)", source, kubeContext, strings.Join(slices.Sorted(slices.Values(names)), ", "))
		}
	} else if raw.CurrentContext == "" && len(raw.Contexts) == 0 {
		return nil, "", "", fmt.Errorf("client: kubeconfig %s defines no context: add one (kubectl config set-context) or pass another file", source)
	}
	if err := checkContext(raw, kubeContext, source); err != nil {
		return nil, "", "", err
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", "", fmt.Errorf("client: kubeconfig %s: %w", source, err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", "", fmt.Errorf("client: kubeconfig %s: namespace: %w", source, err)
	}
	if kubeContext == "" {
		kubeContext = raw.CurrentContext
	}
	return cfg, ns, fmt.Sprintf("kubeconfig %s, context %q", source, kubeContext), nil
}

// checkConfig rejects a configuration that would fail every request, so the
// mistake shows in New, where it can name its source.
func checkConfig(cfg *rest.Config, source string) error {
	fix := "set the cluster's server in the kubeconfig"
	if source == "rest.Config" {
		source, fix = "WithRESTConfig", "set rest.Config.Host"
	}
	if strings.TrimSpace(cfg.Host) == "" {
		return fmt.Errorf("client: %s: no API server address (Host is empty); %s, e.g. \"https://10.0.0.1:6443\"", source, fix)
	}
	if i := strings.Index(cfg.Host, "://"); i >= 0 {
		if scheme := strings.ToLower(cfg.Host[:i]); scheme != "https" && scheme != "http" {
			return fmt.Errorf("client: %s: server %q: scheme %q is not supported; use https:// (or http://)", source, cfg.Host, cfg.Host[:i])
		}
	}
	if _, _, err := rest.DefaultServerUrlFor(cfg); err != nil {
		return fmt.Errorf("client: %s: server %q: %w; %s", source, cfg.Host, err, fix)
	}
	if err := checkUserAgent(cfg.UserAgent); err != nil {
		return fmt.Errorf("client: %s: UserAgent %q: %w", source, cfg.UserAgent, err)
	}
	return nil
}

// checkContext names a context's missing cluster or user, where client-go
// would say only "no configuration has been provided, try setting
// KUBERNETES_MASTER".
func checkContext(raw clientcmdapi.Config, name, source string) error {
	if name == "" {
		name = raw.CurrentContext
	}
	if name == "" {
		return nil // client-go's own error for no current context is clear
	}
	kc, ok := raw.Contexts[name]
	if !ok {
		return fmt.Errorf("client: kubeconfig %s: current-context %q is not defined (it has: %s); pick one with WithKubeContext/--context or kubectl config use-context",
			source, name, strings.Join(slices.Sorted(maps.Keys(raw.Contexts)), ", "))
	}
	if _, ok := raw.Clusters[kc.Cluster]; !ok {
		return fmt.Errorf("client: kubeconfig %s: context %q names cluster %q, which is not defined (clusters: %s); fix it with kubectl config set-context %s --cluster=NAME",
			source, name, kc.Cluster, strings.Join(slices.Sorted(maps.Keys(raw.Clusters)), ", "), name)
	}
	if kc.AuthInfo != "" {
		if _, ok := raw.AuthInfos[kc.AuthInfo]; !ok {
			return fmt.Errorf("client: kubeconfig %s: context %q names user %q, which is not defined (users: %s); fix it with kubectl config set-context %s --user=NAME",
				source, name, kc.AuthInfo, strings.Join(slices.Sorted(maps.Keys(raw.AuthInfos)), ", "), name)
		}
	}
	return nil
}

// applySettings puts kubekit's timeouts, rate limits and user agent on cfg.
func applySettings(cfg *rest.Config, o *options) {
	if o.timeoutSet || cfg.Timeout == 0 {
		cfg.Timeout = o.timeout
	}
	switch {
	case o.noRateLimit:
		cfg.QPS, cfg.Burst = -1, 0 // a negative QPS makes client-go skip its rate limiter
		cfg.RateLimiter = nil
	case cfg.RateLimiter != nil && !o.qpsSet && !o.burstSet:
		// a caller-supplied limiter wins over QPS/Burst
	default:
		cfg.RateLimiter = nil
		if o.qpsSet || cfg.QPS == 0 {
			cfg.QPS = o.qps
		}
		if o.burstSet || cfg.Burst == 0 {
			cfg.Burst = o.burst
		}
	}
	switch {
	case o.warnings != nil:
		cfg.WarningHandler, cfg.WarningHandlerWithContext = nil, o.warnings
	case cfg.WarningHandler == nil && cfg.WarningHandlerWithContext == nil:
		cfg.WarningHandlerWithContext = newLogWarnings(o.logger)
	}
	if o.userAgent != "" {
		cfg.UserAgent = o.userAgent
	} else if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	if cfg.Transport != nil {
		return // a caller-supplied transport owns its own dialing and TLS
	}
	if cfg.Dial == nil || o.dialTimeoutSet {
		cfg.Dial = (&net.Dialer{Timeout: o.dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	// client-go hard-codes a 10s TLS handshake timeout on the transports it
	// builds. Because cfg.Dial is set, the transport built for this config is
	// not shared through client-go's TLS cache, so adjusting it here is safe.
	tlsTimeout := o.tlsTimeout
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		if t := innerTransport(rt); t != nil {
			t.TLSHandshakeTimeout = tlsTimeout
		}
		return rt
	})
}

// innerTransport unwraps rt down to its *http.Transport, if any.
func innerTransport(rt http.RoundTripper) *http.Transport {
	for range 10 {
		switch t := rt.(type) {
		case *http.Transport:
			return t
		case utilnet.RoundTripperWrapper:
			rt = t.WrappedRoundTripper()
		default:
			return nil
		}
	}
	return nil
}

// Kubernetes returns the typed clientset.
func (c *Client) Kubernetes() kubernetes.Interface { return c.kube }

// Dynamic returns the dynamic client, for any resource including custom ones.
func (c *Client) Dynamic() dynamic.Interface { return c.dyn }

// Metadata returns client-go's metadata-only client (k8s.io/client-go/metadata)
// on the same connection pool: Get, List and Watch of any resource as
// metav1.PartialObjectMetadata, without spec or status. See [ListMetadata].
func (c *Client) Metadata() metadata.Interface { return c.meta }

// Discovery returns a discovery client whose results are cached in memory
// until Invalidate is called (RESTMapper does so when it meets an unknown kind).
func (c *Client) Discovery() discovery.CachedDiscoveryInterface { return c.discovery }

// Config returns a copy of the rest.Config this client uses, with kubekit's
// timeouts, rate limits and user agent applied.
func (c *Client) Config() *rest.Config { return rest.CopyConfig(c.cfg) }

// StreamingConfig returns, for long-running watches, a copy of Config
// without the whole-request timeout of [WithTimeout] (which would cut every
// watch stream after that long) and an HTTP client on the same connection
// pool, also without one. kubekit's watch and informer packages build their
// clients from it.
func (c *Client) StreamingConfig() (*rest.Config, *http.Client) {
	cfg := c.Config()
	cfg.Timeout = 0
	return cfg, &http.Client{Transport: c.httpClient.Transport}
}

// HTTPClient returns the HTTP client every clientset of this Client shares.
func (c *Client) HTTPClient() *http.Client { return c.httpClient }

// Namespace returns the default namespace: the kubeconfig context's
// namespace, the Pod's namespace in-cluster, else "default".
func (c *Client) Namespace() string { return c.namespace }

// Source describes where the configuration came from, e.g.
// `kubeconfig /home/me/.kube/config, context "kind"`.
func (c *Client) Source() string { return c.source }

// Logger returns the logger given with WithLogger (klog.Background() by
// default).
func (c *Client) Logger() logr.Logger { return c.log }

// RESTClientFor returns a RESTClient for one API group version with the
// right API path ("/api" for the core group, "/apis" otherwise) and client-go's
// scheme for serialization, the setup the tutorial does by hand:
//
//	rc, _ := c.RESTClientFor(corev1.SchemeGroupVersion)
//	err := rc.Get().Namespace("default").Resource("pods").Do(ctx).Into(&podList)
func (c *Client) RESTClientFor(gv schema.GroupVersion) (*rest.RESTClient, error) {
	return restClientFor("RESTClientFor", c.cfg, c.httpClient, gv)
}

// ServerVersion asks the API server for its version, honouring ctx
// (client-go's Discovery().ServerVersion() takes no context).
func (c *Client) ServerVersion(ctx context.Context) (*version.Info, error) {
	body, err := c.kube.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return nil, fmt.Errorf("client: get server version from %s: %w", c.cfg.Host, err)
	}
	if len(body) == 0 {
		// A server that answers nothing as the deadline ends: say why.
		if ctx.Err() != nil {
			return nil, fmt.Errorf("client: get server version from %s: %w", c.cfg.Host, context.Cause(ctx))
		}
		return nil, fmt.Errorf("client: get server version from %s: the server sent an empty response; is it a Kubernetes API server?", c.cfg.Host)
	}
	var info version.Info
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("client: decode server version from %s: %w", c.cfg.Host, err)
	}
	return &info, nil
}

// Close closes the idle connections of the shared HTTP client, HTTP/2 ones
// included (http.Client.CloseIdleConnections cannot reach through client-go's
// round-tripper wrappers), so their goroutines end. The Client stays usable:
// a later request opens a new connection. Call it when done with the Client.
func (c *Client) Close() {
	utilnet.CloseIdleConnectionsFor(c.httpClient.Transport)
}
