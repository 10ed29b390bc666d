package informer

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/cache"
)

// Option configures [New]. Options may be given in any order.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	namespaces     []string
	labelSelector  string
	fieldSelector  string
	resync         time.Duration
	resyncFor      map[schema.GroupResource]time.Duration
	transform      cache.TransformFunc
	transformSet   int
	dropManaged    bool
	dropManagedSet bool
	noNamespaces   bool // WithNamespaces() without arguments

	metricsName     string
	metricsProvider cache.InformerMetricsProvider
	metricsSet      bool

	// parsed by validate
	labels labels.Selector
	fields fields.Selector
}

func defaultOptions() options {
	return options{resyncFor: map[schema.GroupResource]time.Duration{}}
}

func (o *options) validate() error {
	var errs []error
	if o.noNamespaces {
		errs = append(errs, errors.New("informer: WithNamespaces(): no namespace given; name at least one, or omit the option to watch all namespaces"))
	}
	seen := map[string]bool{}
	for _, ns := range o.namespaces {
		switch {
		case ns == "":
			errs = append(errs, errors.New(`informer: WithNamespaces(""): empty namespace; omit WithNamespaces to watch all namespaces`))
		case len(validation.IsDNS1123Label(ns)) > 0:
			errs = append(errs, fmt.Errorf("informer: WithNamespaces(%q): not a valid namespace name: %s; use a DNS-1123 label such as \"shop\"", ns, validation.IsDNS1123Label(ns)[0]))
		case seen[ns]:
			errs = append(errs, fmt.Errorf("informer: WithNamespaces: namespace %q given twice; name each once", ns))
		}
		seen[ns] = true
	}
	slices.Sort(o.namespaces)
	var err error
	if o.labels, err = labels.Parse(o.labelSelector); err != nil {
		errs = append(errs, fmt.Errorf("informer: WithLabelSelector(%q): %w; use kubectl -l syntax, e.g. \"app=web,tier!=db\"", o.labelSelector, err))
	}
	if o.fields, err = fields.ParseSelector(o.fieldSelector); err != nil {
		errs = append(errs, fmt.Errorf("informer: WithFieldSelector(%q): %w; use kubectl --field-selector syntax, e.g. \"spec.nodeName=node-1\"", o.fieldSelector, err))
	}
	if o.resync < 0 {
		errs = append(errs, fmt.Errorf("informer: WithResync(%v): negative; use 0 to disable resync or a positive period", o.resync))
	}
	for gr, d := range o.resyncFor {
		if gr.Resource == "" {
			errs = append(errs, fmt.Errorf("informer: WithResyncFor(%q, %v): empty resource name; name it, e.g. schema.GroupResource{Resource: \"pods\"}", gr, d))
		}
		if d < 0 {
			errs = append(errs, fmt.Errorf("informer: WithResyncFor(%q, %v): negative; use 0 to disable resync or a positive period", gr, d))
		}
	}
	if o.transformSet > 1 {
		errs = append(errs, errors.New("informer: WithTransform: given more than once; compose the functions into one"))
	}
	if o.transformSet == 1 && o.transform == nil {
		errs = append(errs, errors.New("informer: WithTransform(nil): the function is nil; omit the option instead"))
	}
	errs = append(errs, o.validateMetrics()...)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

// WithNamespaces limits the factory to the given namespaces. Without it
// (the default) informers watch all namespaces. With several namespaces
// each resource gets one informer per namespace (one list and one watch
// each) behind a single [Lister] that merges their contents, so RBAC that
// allows only those namespaces is enough. Cluster-scoped resources ignore
// this option. The option may be repeated; names add up. Calling it with no
// namespace is an error from [New] (all namespaces is the default: omit the
// option).
func WithNamespaces(namespaces ...string) Option {
	return optionFunc(func(o *options) {
		if len(namespaces) == 0 {
			o.noNamespaces = true
		}
		o.namespaces = append(o.namespaces, namespaces...)
	})
}

// WithLabelSelector makes every informer of the factory list and watch only
// objects matching the label selector s (kubectl -l syntax, e.g.
// "app=web,tier in (a,b)"). Default: everything. An unparsable selector is
// an error from [New].
func WithLabelSelector(s string) Option {
	return optionFunc(func(o *options) { o.labelSelector = s })
}

// WithFieldSelector makes every informer list and watch only objects
// matching the field selector s (e.g. "spec.nodeName=node-1"). The API
// server supports only a few fields per resource; an unsupported one makes
// the informer's list fail, which [Factory.WaitForSync] reports.
func WithFieldSelector(s string) Option {
	return optionFunc(func(o *options) { o.fieldSelector = s })
}

// WithResync sets the default resync period: every period, handlers get an
// update event (old and new the same object) for every cached object, which
// lets level-based controllers retry. Default 0: no resync. client-go
// raises periods under one second to one second.
func WithResync(d time.Duration) Option {
	return optionFunc(func(o *options) { o.resync = d })
}

// WithResyncFor overrides the resync period for one resource, e.g.
// WithResyncFor(schema.GroupResource{Resource: "pods"}, time.Minute) or
// schema.GroupResource{Group: "apps", Resource: "deployments"}. It applies to
// typed and dynamic informers of that resource alike. May be repeated.
func WithResyncFor(resource schema.GroupResource, d time.Duration) Option {
	return optionFunc(func(o *options) { o.resyncFor[resource] = d })
}

// WithTransform sets a function that every informer applies to each object
// before it is stored and handed to handlers (client-go's
// SharedIndexInformer.SetTransform). It must return quickly, must not keep
// references to the object elsewhere, and may modify the object in place
// (it is the only owner at that point). With [WithDropManagedFields] the
// fields are dropped first, then fn runs. Given once at most.
func WithTransform(fn cache.TransformFunc) Option {
	return optionFunc(func(o *options) { o.transform = fn; o.transformSet++ })
}

// WithDropManagedFields(true) strips metadata.managedFields from every cached
// object with [DropManagedFields]. The API server records one entry per
// field manager; measured on Pods with three managers (a ReplicaSet
// controller's server-side apply, kubelet's status, a kubectl label), the
// cache holds 10.1 KB per Pod by default and 7.1 KB without managedFields,
// 29% less (BenchmarkManagedFieldsMemory). Default false for [For] and
// [ForResource], because code that inspects managedFields needs them; true
// for [ForMetadata], whose point is memory and where managedFields are most
// of what is left (BenchmarkMetadataMemory: 4.5 KB per Pod with them, 1.5 KB
// without); WithDropManagedFields(false) keeps them there too.
func WithDropManagedFields(drop bool) Option {
	return optionFunc(func(o *options) { o.dropManaged = drop; o.dropManagedSet = true })
}
