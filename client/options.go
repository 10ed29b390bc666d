package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// Defaults applied by [New]. client-go's own defaults (QPS 5, Burst 10) throttle
// any real controller or bulk operation, so kubekit uses kubectl's order of
// magnitude instead.
const (
	DefaultQPS                 = 50
	DefaultBurst               = 100
	DefaultDialTimeout         = 30 * time.Second
	DefaultTLSHandshakeTimeout = 10 * time.Second
)

// Option configures [New]. Options may be given in any order; conflicting
// source options (for example [WithInCluster] and [WithKubeconfig]) are an
// error.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	kubeconfig      string
	kubeconfigSet   bool
	context         string
	inCluster       bool
	restConfig      *rest.Config
	restConfigSet   bool
	timeout         time.Duration
	timeoutSet      bool
	dialTimeout     time.Duration
	dialTimeoutSet  bool
	tlsTimeout      time.Duration
	qps             float32
	burst           int
	noRateLimit     bool
	qpsSet          bool
	burstSet        bool
	userAgent       string
	logger          logr.Logger
	inClusterConfig func() (*rest.Config, error) // for tests
	homeDir         func() (string, error)       // for tests
	getenv          func(string) string          // for tests
	warnings        rest.WarningHandlerWithContext
	warningsSet     bool
}

func defaultOptions() options {
	return options{
		dialTimeout: DefaultDialTimeout,
		tlsTimeout:  DefaultTLSHandshakeTimeout,
		qps:         DefaultQPS,
		burst:       DefaultBurst,
		logger:      klog.Background(),
	}
}

func (o *options) validate() error {
	var errs []error
	sources := 0
	if o.kubeconfigSet {
		sources++
		if o.kubeconfig == "" {
			errs = append(errs, errors.New(`client: WithKubeconfig(""): the path is empty; omit the option to use $KUBECONFIG or ~/.kube/config`))
		}
	}
	if o.inCluster {
		sources++
		if o.context != "" {
			errs = append(errs, fmt.Errorf("client: WithKubeContext(%q): cannot be combined with WithInCluster, in-cluster configuration has no contexts; drop one of the two", o.context))
		}
	}
	if o.restConfigSet {
		sources++
		if o.restConfig == nil {
			errs = append(errs, errors.New("client: WithRESTConfig(nil): the config is nil; pass a *rest.Config or use WithKubeconfig"))
		}
		if o.context != "" {
			errs = append(errs, fmt.Errorf("client: WithKubeContext(%q): cannot be combined with WithRESTConfig, a rest.Config has no contexts; drop one of the two", o.context))
		}
	}
	if sources > 1 {
		errs = append(errs, fmt.Errorf("client: New: %d configuration sources given; choose one of WithKubeconfig, WithInCluster and WithRESTConfig", sources))
	}
	if o.timeout < 0 {
		errs = append(errs, fmt.Errorf("client: WithTimeout(%v): must be >= 0; 0 means no whole-request timeout", o.timeout))
	}
	if o.dialTimeout <= 0 {
		errs = append(errs, fmt.Errorf("client: WithDialTimeout(%v): must be > 0; omit it for %v", o.dialTimeout, DefaultDialTimeout))
	}
	if o.tlsTimeout <= 0 {
		errs = append(errs, fmt.Errorf("client: WithTLSHandshakeTimeout(%v): must be > 0; omit it for %v", o.tlsTimeout, DefaultTLSHandshakeTimeout))
	}
	if o.qps <= 0 {
		errs = append(errs, fmt.Errorf("client: WithQPS(%v): must be > 0; use WithRateLimit(false) to disable client-side throttling", o.qps))
	}
	if o.burst <= 0 {
		errs = append(errs, fmt.Errorf("client: WithBurst(%d): must be > 0; omit it for %d", o.burst, DefaultBurst))
	}
	if o.noRateLimit && (o.qpsSet || o.burstSet) {
		errs = append(errs, errors.New("client: WithRateLimit(false): conflicts with WithQPS/WithBurst; drop one or the other"))
	}
	if err := checkUserAgent(o.userAgent); err != nil {
		errs = append(errs, fmt.Errorf("client: WithUserAgent(%q): %w", o.userAgent, err))
	}
	if o.warningsSet && o.warnings == nil {
		errs = append(errs, errors.New("client: WithWarningHandler(nil): the handler is nil; pass rest.NoWarnings{} to drop API warnings, or omit the option to log them"))
	}
	return errors.Join(errs...)
}

// WithKubeconfig loads the kubeconfig file at path instead of $KUBECONFIG or
// ~/.kube/config. A missing or malformed file is an error.
func WithKubeconfig(path string) Option {
	return optionFunc(func(o *options) { o.kubeconfig = path; o.kubeconfigSet = true })
}

// WithKubeContext selects a kubeconfig context other than the current one.
// It applies to WithKubeconfig and to the default kubeconfig search; it
// conflicts with WithInCluster and WithRESTConfig.
func WithKubeContext(name string) Option { return optionFunc(func(o *options) { o.context = name }) }

// WithInCluster uses the Pod's service account (the token and CA mounted under
// /var/run/secrets/kubernetes.io/serviceaccount and $KUBERNETES_SERVICE_HOST).
// Outside a cluster New fails with an error saying so.
func WithInCluster() Option { return optionFunc(func(o *options) { o.inCluster = true }) }

// WithRESTConfig uses a copy of cfg as the source (cfg itself is not
// modified). Values cfg sets (Timeout, QPS, Burst, UserAgent, Dial, a
// RateLimiter or a Transport) are kept unless the matching option is given;
// kubekit's defaults fill only what cfg leaves zero.
//
// cfg must not be nil and must name the API server in Host ("https://host:port",
// or "host:port" for https); New rejects a nil config, an empty Host and a
// scheme other than http or https.
func WithRESTConfig(cfg *rest.Config) Option {
	return optionFunc(func(o *options) {
		o.restConfigSet = true
		o.restConfig = nil
		if cfg != nil {
			o.restConfig = rest.CopyConfig(cfg)
		}
	})
}

// WithTimeout bounds every request as a whole (connect, send, and reading the
// entire response), like kubectl's --request-timeout; it sets
// rest.Config.Timeout. Default 0: no whole-request bound, so callers bound
// calls with ctx deadlines. It also cuts watch streams after d (kubekit's
// watch and informer packages use a copy of the config without it).
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.timeout = d; o.timeoutSet = true })
}

// WithDialTimeout bounds establishing a TCP connection. Default
// [DefaultDialTimeout] (30s, client-go's value); must be > 0.
func WithDialTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.dialTimeout = d; o.dialTimeoutSet = true })
}

// WithTLSHandshakeTimeout bounds the TLS handshake of a new connection.
// Default [DefaultTLSHandshakeTimeout] (10s); must be > 0. It does not apply
// when WithRESTConfig's config carries its own Transport.
func WithTLSHandshakeTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.tlsTimeout = d })
}

// WithQPS sets the client-side sustained request rate. Default [DefaultQPS].
func WithQPS(qps float32) Option {
	return optionFunc(func(o *options) { o.qps = qps; o.qpsSet = true })
}

// WithBurst sets the client-side burst above QPS. Default [DefaultBurst].
func WithBurst(n int) Option { return optionFunc(func(o *options) { o.burst = n; o.burstSet = true }) }

// WithRateLimit(false) disables client-side throttling entirely, leaving flow
// control to the API server (API Priority and Fairness). Default true.
func WithRateLimit(enabled bool) Option {
	return optionFunc(func(o *options) { o.noRateLimit = !enabled })
}

// WithUserAgent sets the User-Agent header. Default: client-go's
// "<binary>/<version> (<os>/<arch>) kubernetes/<commit>". A value with a
// newline or another control character is an error from New: no HTTP request
// could carry it.
func WithUserAgent(ua string) Option { return optionFunc(func(o *options) { o.userAgent = ua }) }

// WithLogger sets the logger kubekit uses for this client (source resolution,
// RESTMapper refreshes) and hands on to the informer package. Default:
// klog.Background(), so nothing is invisible by default and
// logging.RouteKlog captures it.
func WithLogger(l logr.Logger) Option { return optionFunc(func(o *options) { o.logger = l }) }

// checkUserAgent rejects what net/http refuses to send in a header value.
func checkUserAgent(ua string) error {
	for i, r := range ua {
		if r == '\t' {
			continue
		}
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control character %q at byte %d: HTTP headers cannot carry it; remove newlines and control characters", r, i)
		}
	}
	return nil
}

// WithWarningHandler sets what happens to the warnings the API server sends
// with its answers (deprecated APIs, "child pods are preserved...", unknown
// fields with FieldValidation("Warn")). Default: each distinct warning is
// logged once on the client's logger ([WithLogger]); a handler set on
// WithRESTConfig's config is kept. kubectl prints them on stderr as
// "Warning: <text>": use [WarningWriter] with rest.NewWarningWriter for that,
// or rest.NoWarnings{} to drop them.
func WithWarningHandler(h rest.WarningHandlerWithContext) Option {
	return optionFunc(func(o *options) { o.warnings = h; o.warningsSet = true })
}
