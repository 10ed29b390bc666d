package client

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// DefaultPollInterval is how often [Client.Wait] reads each object unless
// [PollInterval] says otherwise.
const DefaultPollInterval = 500 * time.Millisecond

// Status is an object's state as sigs.k8s.io/cli-utils' kstatus computes it
// from its status (conditions, observedGeneration, replicas...).
type Status string

// The statuses [Client.Wait] reports; they are kstatus's.
const (
	Current     Status = Status(status.CurrentStatus)     // reconciled and ready
	InProgress  Status = Status(status.InProgressStatus)  // not ready yet
	Failed      Status = Status(status.FailedStatus)      // the controller reports a failure
	Terminating Status = Status(status.TerminatingStatus) // marked for deletion
	NotFound    Status = Status(status.NotFoundStatus)    // not on the server
	Unknown     Status = Status(status.UnknownStatus)     // kstatus could not tell
)

// WaitResult is one object as [Client.Wait] last saw it.
type WaitResult struct {
	Object   Object                      // as given to Wait
	Name     string                      // kubectl's name: "deployment.apps/web"
	Resource schema.GroupVersionResource // where it is served
	Status   Status
	Message  string // kstatus's message, e.g. "Deployment is available. Replicas: 1"
	Done     bool   // the condition holds
}

// Condition is what [Client.Wait] waits for: [ForReady], [ForDeleted] or
// [ForCondition].
type Condition struct {
	name string
	err  error // a bad argument to ForCondition
	// mustExist makes a missing object an error (NotFound).
	mustExist bool
	// met reports whether live (nil when not found) satisfies the
	// condition for want; an error stops the wait.
	met func(live *unstructured.Unstructured, want Object) (bool, error)
}

// String names the condition as kubectl's --for flag does: "ready",
// "delete", "condition=Available".
func (c Condition) String() string { return c.name }

// ForReady waits until kstatus computes Current for every object: a
// Deployment whose replicas are updated and available, a Job that completed,
// a CRD that is Established, an object with a Ready condition that is True;
// kinds without status (ConfigMaps...) are Current once they exist. A Failed
// object ends the wait with an error.
func ForReady() Condition {
	return Condition{name: "ready", met: func(live *unstructured.Unstructured, _ Object) (bool, error) {
		return live != nil && computeStatus(live).Status == Current, nil
	}}
}

// ForDeleted waits until no object is left on the server, like kubectl wait
// --for=delete: an object that is not found, or whose uid differs from a uid
// set on the given object (deleted and re-created since), counts as deleted.
func ForDeleted() Condition {
	return Condition{name: "delete", met: func(live *unstructured.Unstructured, want Object) (bool, error) {
		return live == nil || (want.GetUID() != "" && live.GetUID() != want.GetUID()), nil
	}}
}

// ForCondition waits, like kubectl wait --for=condition=NAME[=VALUE], until
// every object has a status condition of type name (case-insensitive) whose
// status is value (default "True", case-insensitive) and, when the condition
// records an observedGeneration, that it is not older than the object's
// generation. An object that is not found is an error, as with kubectl.
func ForCondition(name string) Condition {
	typ, value, ok := strings.Cut(name, "=")
	if !ok {
		value = "True"
	}
	var err error
	if typ == "" || value == "" {
		err = fmt.Errorf("client: ForCondition(%q): the condition type or value is empty; pass a type, optionally with a value: \"Available\" or \"Ready=False\"", name)
	}
	return Condition{name: "condition=" + name, err: err, mustExist: true, met: func(live *unstructured.Unstructured, _ Object) (bool, error) {
		conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
		for _, cd := range conds {
			m, _ := cd.(map[string]any)
			t, _ := m["type"].(string)
			s, _ := m["status"].(string)
			if !strings.EqualFold(t, typ) {
				continue
			}
			if g, ok, _ := unstructured.NestedInt64(m, "observedGeneration"); ok && g < live.GetGeneration() {
				return false, nil
			}
			return strings.EqualFold(s, value), nil
		}
		return false, nil
	}}
}

// WaitOption configures one [Client.Wait].
type WaitOption interface{ applyWait(*waitOptions) }

type waitOptions struct {
	interval  time.Duration
	onStatus  func(WaitResult)
	namespace string
}

// PollInterval sets how often Wait reads each object (one GET per object per
// round). Default [DefaultPollInterval]; it must be positive.
type PollInterval time.Duration

func (p PollInterval) applyWait(o *waitOptions) { o.interval = time.Duration(p) }

// OnStatus is called, from Wait's goroutine, with an object's state each time
// its status, message or Done changes (and once with the first one seen).
type OnStatus func(WaitResult)

func (f OnStatus) applyWait(o *waitOptions) { o.onStatus = f }

func (n InNamespace) applyWait(o *waitOptions) { o.namespace = string(n) }

// WaitError is Wait's error when some objects did not reach the condition:
// ctx ended first (Err is ctx's error) or an object Failed (Err is nil).
type WaitError struct {
	Condition Condition
	Failed    []WaitResult // Status Failed (ForReady only)
	Pending   []WaitResult // not done yet
	Err       error
}

// Error names the objects that were not there in time.
func (e *WaitError) Error() string {
	var b strings.Builder
	b.WriteString("client: Wait")
	if len(e.Failed) > 0 {
		b.WriteString(": failed:")
		for _, r := range e.Failed {
			fmt.Fprintf(&b, " %s (%s)", r.Name, r.Message)
		}
	}
	if len(e.Pending) > 0 {
		fmt.Fprintf(&b, ": not %s:", e.Condition)
		for _, r := range e.Pending {
			fmt.Fprintf(&b, " %s (%s)", r.Name, r.Status)
		}
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error (ctx's, or the last API error).
func (e *WaitError) Unwrap() error { return e.Err }

// Wait polls objs until every one satisfies cond, ctx ends, or (with
// [ForReady]) one is Failed. Namespaced objects without a namespace are
// looked for in [InNamespace], else the client's namespace. It returns the
// last state of every object in input order; the error is a *WaitError when
// the condition was not reached, any other error (a failed read: Forbidden,
// an unknown kind) at once. Bound it with a ctx deadline.
//
// After ApplyManifests, pass the results' objects:
//
//	objs := make([]client.Object, len(results))
//	for i, r := range results {
//		objs[i] = r.Object
//	}
//	_, err := c.Wait(ctx, objs, client.ForReady())
func (c *Client) Wait(ctx context.Context, objs []Object, cond Condition, opts ...WaitOption) ([]WaitResult, error) {
	o := waitOptions{interval: DefaultPollInterval}
	for _, opt := range opts {
		if opt != nil {
			opt.applyWait(&o)
		}
	}
	if o.interval <= 0 {
		return nil, fmt.Errorf("client: PollInterval(%v): must be positive; omit it for %v", o.interval, DefaultPollInterval)
	}
	if cond.err != nil {
		return nil, cond.err
	}
	if cond.met == nil {
		return nil, errors.New("client: Wait: the Condition is empty; use ForReady(), ForDeleted() or ForCondition(name)")
	}
	wo := writeOptions{namespace: o.namespace}
	targets := make([]target, len(objs))
	results := make([]WaitResult, len(objs))
	for i, obj := range objs {
		if obj == nil || reflect.ValueOf(obj).IsNil() {
			return nil, fmt.Errorf("client: Wait: object %d is nil", i+1)
		}
		cp, ok := obj.DeepCopyObject().(Object)
		if !ok {
			return nil, fmt.Errorf("client: Wait: object %d: %T.DeepCopyObject does not return an Object", i+1, obj)
		}
		t, err := c.locate(ctx, cp, &wo, true) // locate fills in the namespace: not on the caller's object
		if err != nil {
			return nil, fmt.Errorf("client: Wait: object %d: %w", i+1, err)
		}
		targets[i] = t
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(t.gvk)
		u.SetName(t.name)
		results[i] = WaitResult{Object: obj, Name: KubectlName(u), Resource: t.mapping.Resource}
	}
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	first := true
	for {
		pending, failed := 0, 0
		for i := range objs {
			r := &results[i]
			if r.Done {
				continue
			}
			live, err := c.getLive(ctx, targets[i])
			if err != nil && deadlineAhead(err) {
				<-ctx.Done() // the deadline is closer than the next request's turn
			}
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				return results, err
			}
			next := *r
			if live == nil {
				if cond.mustExist {
					return results, fmt.Errorf("client: Wait for %s: %w", cond, apierrors.NewNotFound(targets[i].mapping.Resource.GroupResource(), targets[i].name))
				}
				next.Status, next.Message = NotFound, "Resource not found"
			} else {
				res := computeStatus(live)
				next.Status, next.Message = res.Status, res.Message
			}
			done, err := cond.met(live, objs[i])
			if err != nil {
				return results, fmt.Errorf("client: Wait for %s %s: %w", cond, targets[i], err)
			}
			next.Done = done
			changed := first || next.Status != r.Status || next.Message != r.Message || next.Done != r.Done
			*r = next
			if changed && o.onStatus != nil {
				o.onStatus(*r)
			}
			if !r.Done {
				pending++
				if r.Status == Failed && cond.name == "ready" {
					failed++
				}
			}
		}
		first = false
		if err := ctx.Err(); err != nil {
			return results, c.waitError(cond, results, err)
		}
		if pending == 0 {
			return results, nil
		}
		if failed > 0 {
			return results, c.waitError(cond, results, nil)
		}
		select {
		case <-ctx.Done():
			return results, c.waitError(cond, results, ctx.Err())
		case <-tick.C:
		}
	}
}

func (c *Client) waitError(cond Condition, rs []WaitResult, err error) *WaitError {
	e := &WaitError{Condition: cond, Err: err}
	for _, r := range rs {
		switch {
		case r.Done:
		case r.Status == Failed && cond.name == "ready":
			e.Failed = append(e.Failed, r)
		default:
			e.Pending = append(e.Pending, r)
		}
	}
	return e
}

// getLive reads t; nil, nil when it is not found.
func (c *Client) getLive(ctx context.Context, t target) (*unstructured.Unstructured, error) {
	body, _, err := do(ctx, c.request("GET", t, true), "wait: read", t)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(body); err != nil {
		return nil, fmt.Errorf("client: wait: decode %s: %w", t, err)
	}
	return u, nil
}

type statusResult struct {
	Status  Status
	Message string
}

// computeStatus is kstatus's verdict on u; an error from kstatus (a
// malformed status) is reported as Unknown with its text.
func computeStatus(u *unstructured.Unstructured) statusResult {
	res, err := status.Compute(u)
	if err != nil {
		return statusResult{Unknown, err.Error()}
	}
	return statusResult{Status(res.Status), res.Message}
}

// deadlineAhead reports whether err is client-go's rate limiter refusing to
// wait past the ctx deadline. It wraps no sentinel (golang.org/x/time/rate
// returns a plain error), so the text is all there is to go by.
func deadlineAhead(err error) bool {
	return strings.Contains(err.Error(), "would exceed context deadline")
}
