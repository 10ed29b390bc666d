package client

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
)

// DefaultFieldManager is the field manager Apply, Create, Update and Patch use
// unless [FieldManager] says otherwise.
const DefaultFieldManager = "kubekit"

// writeOption is what every per-verb option interface embeds: the option
// records itself in the call's options.
type writeOption interface{ applyWrite(*writeOptions) }

type writeOptions struct {
	fieldManager    string
	force           *bool
	dryRun          bool
	fieldValidation string
	propagation     *metav1.DeletionPropagation
	gracePeriod     *int64
	preconditions   *metav1.Preconditions
	namespace       string
	establish       *time.Duration
	concurrency     *int
	recreate        bool
	labelSelector   string
	fieldSelector   string
}

// FieldManager names the field manager recorded in managedFields (default
// [DefaultFieldManager], "kubekit"). It must not be empty.
type FieldManager string

func (f FieldManager) applyWrite(o *writeOptions) { o.fieldManager = string(f) }

// ForceOwnership makes Apply take over fields other managers own instead of
// failing with a 409 Conflict (kubectl's --force-conflicts). Default false.
type ForceOwnership bool

func (f ForceOwnership) applyWrite(o *writeOptions) { v := bool(f); o.force = &v }

// DryRun(true) asks the API server to validate and admit the write without
// persisting it (dryRun=All, kubectl's --dry-run=server). Default false.
type DryRun bool

func (d DryRun) applyWrite(o *writeOptions) { o.dryRun = bool(d) }

// FieldValidation sets how the API server treats unknown or duplicate fields
// on writes: "Ignore", "Warn" (the server's default) or "Strict" (kubectl's
// default, an error).
type FieldValidation string

func (f FieldValidation) applyWrite(o *writeOptions) { o.fieldValidation = string(f) }

// PropagationPolicy sets how deletes treat dependents: Background (the
// default, as kubectl's --cascade=background: the object goes at once and the
// garbage collector deletes its dependents), Foreground (the object stays,
// with a foregroundDeletion finalizer, until its blocking dependents are
// gone) or Orphan (dependents are kept). kubekit always sends a policy: left
// to itself the API server orphans the Pods of a Job.
type PropagationPolicy metav1.DeletionPropagation

func (p PropagationPolicy) applyWrite(o *writeOptions) {
	v := metav1.DeletionPropagation(p)
	o.propagation = &v
}

// GracePeriodSeconds sets a delete's or an eviction's grace period in
// seconds (0 = immediately; default: the object's own). It must be >= 0.
type GracePeriodSeconds int64

func (g GracePeriodSeconds) applyWrite(o *writeOptions) { v := int64(g); o.gracePeriod = &v }

// Preconditions makes a delete conditional: the API server deletes the
// object only if its uid and/or resourceVersion (the fields that are set)
// still match, and answers 409 Conflict otherwise. A controller that read an
// object and decided to delete it uses the uid, so that an object deleted
// and re-created meanwhile under the same name is not deleted by mistake.
type Preconditions metav1.Preconditions

func (p Preconditions) applyWrite(o *writeOptions) {
	v := metav1.Preconditions(p)
	o.preconditions = &v
}

// InNamespace is the namespace for namespaced objects that have none, in place
// of [Client.Namespace] (kubectl's -n). Objects that name another namespace
// keep theirs.
type InNamespace string

func (n InNamespace) applyWrite(o *writeOptions) { o.namespace = string(n) }

// EstablishTimeout bounds how long ApplyManifests waits for a
// CustomResourceDefinition it applied to become Established before applying
// that CRD's custom resources. Default 30s; it must be positive.
type EstablishTimeout time.Duration

func (e EstablishTimeout) applyWrite(o *writeOptions) { v := time.Duration(e); o.establish = &v }

// Concurrency bounds how many objects of one stage (Namespaces, then CRDs,
// then the rest) ApplyManifests applies at once. Default
// [DefaultConcurrency]; 1 applies one at a time. Every request still goes
// through the client's rate limiter ([WithQPS], [WithBurst]), and results
// stay in input order. It must be positive.
type Concurrency int

func (n Concurrency) applyWrite(o *writeOptions) { v := int(n); o.concurrency = &v }

// Recreate(true) makes Apply and ApplyManifests delete and re-create an
// object when the server rejects the apply because it changes an immutable
// field (a Job's template, a Service's clusterIP...), as kubectl apply
// --force does: the object is deleted (propagation Background), Apply waits
// until it is gone (bounded by ctx), then applies again; the outcome is
// Configured, as kubectl reports it, and the result says Recreated. If the
// new object cannot be created, the old one is restored and both errors are
// returned. Default false. Not with DryRun.
type Recreate bool

func (r Recreate) applyWrite(o *writeOptions) { o.recreate = bool(r) }

// LabelSelector restricts a list ([List], [ListDynamic], [Collect],
// [Count]) or [Client.DeleteAllOf] to objects matching a label selector, e.g.
// "app=web,tier!=db". An unparsable selector is an error naming it, before
// any request.
type LabelSelector string

func (s LabelSelector) applyList(o *listOptions)   { o.labelSelector = string(s) }
func (s LabelSelector) applyWrite(o *writeOptions) { o.labelSelector = string(s) }

// FieldSelector restricts a list or [Client.DeleteAllOf] by fields the
// resource supports, e.g. "spec.nodeName=node-1" for Pods or
// "metadata.name=x". An unparsable selector is an error naming it, before
// any request; a field the resource does not support is the API server's 400.
type FieldSelector string

func (s FieldSelector) applyList(o *listOptions)   { o.fieldSelector = string(s) }
func (s FieldSelector) applyWrite(o *writeOptions) { o.fieldSelector = string(s) }

// newWriteOptions collects opts and checks their values; the error joins
// every bad value, each naming its option.
func newWriteOptions[O writeOption](opts []O) (writeOptions, error) {
	o := writeOptions{fieldManager: DefaultFieldManager}
	for _, opt := range opts {
		if any(opt) != nil {
			opt.applyWrite(&o)
		}
	}
	return o, o.validate()
}

func (o *writeOptions) validate() error {
	var errs []error
	if o.fieldManager == "" {
		errs = append(errs, fmt.Errorf(`client: FieldManager(""): must not be empty; name your program, or omit the option for %q`, DefaultFieldManager))
	}
	if o.gracePeriod != nil && *o.gracePeriod < 0 {
		errs = append(errs, fmt.Errorf("client: GracePeriodSeconds(%d): must be >= 0; use 0 to delete at once, or omit the option for the object's own grace period", *o.gracePeriod))
	}
	if o.establish != nil && *o.establish <= 0 {
		errs = append(errs, fmt.Errorf("client: EstablishTimeout(%v): must be positive; omit it for %v, or raise it, e.g. client.EstablishTimeout(2*time.Minute)", *o.establish, DefaultEstablishTimeout))
	}
	if o.concurrency != nil && *o.concurrency <= 0 {
		errs = append(errs, fmt.Errorf("client: Concurrency(%d): must be positive; 1 applies one object at a time, omit the option for %d", *o.concurrency, DefaultConcurrency))
	}
	if o.recreate && o.dryRun {
		errs = append(errs, errors.New("client: Recreate(true): cannot be used with DryRun(true), a dry run cannot delete and re-create; drop one of the two"))
	}
	switch o.fieldValidation {
	case "", "Ignore", "Warn", "Strict":
	default:
		errs = append(errs, fmt.Errorf("client: FieldValidation(%q): must be Ignore, Warn or Strict; omit it for the server's default, Warn", o.fieldValidation))
	}
	if o.propagation != nil {
		switch *o.propagation {
		case metav1.DeletePropagationOrphan, metav1.DeletePropagationBackground, metav1.DeletePropagationForeground:
		default:
			errs = append(errs, fmt.Errorf("client: PropagationPolicy(%q): must be Orphan, Background or Foreground; omit it for Background", *o.propagation))
		}
	}
	if err := checkSelectors(o.labelSelector, o.fieldSelector); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkSelectors parses a label and a field selector; the error joins what
// is wrong with each.
func checkSelectors(label, field string) error {
	var errs []error
	if _, err := labels.Parse(label); err != nil {
		errs = append(errs, fmt.Errorf("client: LabelSelector(%q): %w; use kubectl -l syntax, e.g. \"app=web,tier!=db\" or \"env in (a,b)\"", label, err))
	}
	if _, err := fields.ParseSelector(field); err != nil {
		errs = append(errs, fmt.Errorf("client: FieldSelector(%q): %w; use field=value pairs, e.g. \"spec.nodeName=node-1\"", field, err))
	}
	return errors.Join(errs...)
}

// params puts the options of a create, update, patch or apply on a request;
// force only on an apply.
func (o *writeOptions) params(r *rest.Request, apply bool) *rest.Request {
	if o.dryRun {
		r = r.Param("dryRun", metav1.DryRunAll)
	}
	r = r.Param("fieldManager", o.fieldManager)
	if o.fieldValidation != "" {
		r = r.Param("fieldValidation", o.fieldValidation)
	}
	if o.force != nil && apply {
		r = r.Param("force", strconv.FormatBool(*o.force))
	}
	return r
}

// deleteOptions is the body of a delete: propagation Background unless the
// options say otherwise, the grace period and dry run.
func (o *writeOptions) deleteOptions() metav1.DeleteOptions {
	policy := metav1.DeletePropagationBackground
	if o.propagation != nil {
		policy = *o.propagation
	}
	del := metav1.DeleteOptions{PropagationPolicy: &policy, GracePeriodSeconds: o.gracePeriod, Preconditions: o.preconditions}
	if o.dryRun {
		del.DryRun = []string{metav1.DryRunAll}
	}
	return del
}

// The option interfaces, one per verb (or family of verbs that take the
// same options). An option type implements the interfaces of the verbs it
// makes sense for, so a misplaced option is a compile error.

// GetOption configures [Client.Get] and [Client.GetScale]: [InNamespace].
type GetOption interface {
	writeOption
	getOption()
}

// CreateOption configures [Client.Create]: [DryRun], [FieldManager], [FieldValidation], [InNamespace].
type CreateOption interface {
	writeOption
	createOption()
}

// UpdateOption configures [Client.Update] and [StatusWriter.Update]: [DryRun], [FieldManager], [FieldValidation], [InNamespace].
type UpdateOption interface {
	writeOption
	updateOption()
}

// PatchOption configures [Client.Patch], [StatusWriter.Patch] and [Client.Scale]: [DryRun], [FieldManager], [FieldValidation], [InNamespace].
type PatchOption interface {
	writeOption
	patchOption()
}

// ApplyOption configures [Client.Apply] and [ApplyConfiguration]: [DryRun], [FieldManager], [FieldValidation], [ForceOwnership], [Recreate], [InNamespace].
type ApplyOption interface {
	writeOption
	applyOption()
}

// StatusApplyOption configures [StatusWriter.Apply]: [DryRun], [FieldManager], [FieldValidation], [ForceOwnership], [InNamespace].
type StatusApplyOption interface {
	writeOption
	statusApplyOption()
}

// DeleteOption configures [Client.Delete]: [DryRun], [InNamespace], [PropagationPolicy], [GracePeriodSeconds], [Preconditions].
type DeleteOption interface {
	writeOption
	deleteOption()
}

// DeleteManifestsOption configures [Client.DeleteManifests]: [DryRun], [InNamespace], [PropagationPolicy], [GracePeriodSeconds].
type DeleteManifestsOption interface {
	writeOption
	deleteManifestsOption()
}

// DeleteAllOfOption configures [Client.DeleteAllOf]: [DryRun], [InNamespace], [PropagationPolicy], [GracePeriodSeconds], [LabelSelector], [FieldSelector].
type DeleteAllOfOption interface {
	writeOption
	deleteAllOfOption()
}

// EvictOption configures [Client.Evict]: [DryRun], [InNamespace], [GracePeriodSeconds].
type EvictOption interface {
	writeOption
	evictOption()
}

// ApplyManifestsOption configures [Client.ApplyManifests] and [Client.ApplyAndPrune]: [DryRun], [FieldManager], [FieldValidation], [ForceOwnership], [Recreate], [InNamespace], [EstablishTimeout], [Concurrency].
type ApplyManifestsOption interface {
	writeOption
	applyManifestsOption()
}

// DiffOption configures [Client.Diff]: [FieldManager], [FieldValidation], [ForceOwnership], [InNamespace].
type DiffOption interface {
	writeOption
	diffOption()
}

// The verbs each option type serves: see the table in the package doc.

func (DryRun) createOption()          {}
func (DryRun) updateOption()          {}
func (DryRun) patchOption()           {}
func (DryRun) applyOption()           {}
func (DryRun) statusApplyOption()     {}
func (DryRun) deleteOption()          {}
func (DryRun) deleteManifestsOption() {}
func (DryRun) deleteAllOfOption()     {}
func (DryRun) evictOption()           {}
func (DryRun) applyManifestsOption()  {}

func (FieldManager) createOption()         {}
func (FieldManager) updateOption()         {}
func (FieldManager) patchOption()          {}
func (FieldManager) applyOption()          {}
func (FieldManager) statusApplyOption()    {}
func (FieldManager) applyManifestsOption() {}
func (FieldManager) diffOption()           {}

func (FieldValidation) createOption()         {}
func (FieldValidation) updateOption()         {}
func (FieldValidation) patchOption()          {}
func (FieldValidation) applyOption()          {}
func (FieldValidation) statusApplyOption()    {}
func (FieldValidation) applyManifestsOption() {}
func (FieldValidation) diffOption()           {}

func (ForceOwnership) applyOption()          {}
func (ForceOwnership) statusApplyOption()    {}
func (ForceOwnership) applyManifestsOption() {}
func (ForceOwnership) diffOption()           {}

func (Recreate) applyOption()          {}
func (Recreate) applyManifestsOption() {}

func (InNamespace) getOption()             {}
func (InNamespace) createOption()          {}
func (InNamespace) updateOption()          {}
func (InNamespace) patchOption()           {}
func (InNamespace) applyOption()           {}
func (InNamespace) statusApplyOption()     {}
func (InNamespace) deleteOption()          {}
func (InNamespace) deleteManifestsOption() {}
func (InNamespace) deleteAllOfOption()     {}
func (InNamespace) evictOption()           {}
func (InNamespace) applyManifestsOption()  {}
func (InNamespace) diffOption()            {}

func (PropagationPolicy) deleteOption()          {}
func (PropagationPolicy) deleteManifestsOption() {}
func (PropagationPolicy) deleteAllOfOption()     {}

func (GracePeriodSeconds) deleteOption()          {}
func (GracePeriodSeconds) deleteManifestsOption() {}
func (Preconditions) deleteOption()               {}
func (GracePeriodSeconds) deleteAllOfOption()     {}
func (GracePeriodSeconds) evictOption()           {}

func (EstablishTimeout) applyManifestsOption() {}

func (Concurrency) applyManifestsOption() {}

func (LabelSelector) deleteAllOfOption() {}

func (FieldSelector) deleteAllOfOption() {}
