package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
)

// ConfigMapKey is the data key under which [ConfigMapCheckpoint] stores the state.
const ConfigMapKey = "checkpoint"

// Annotations [ConfigMapCheckpoint] writes on its ConfigMap.
const (
	// WriterAnnotation holds the identity of the last writer
	// ([WithWriterIdentity]), which a conflict names.
	WriterAnnotation = "watch.kubekit.io/writer"
	// writeIDAnnotation holds a random token of the ConfigMapCheckpoint
	// value that wrote last, so it recognises its own write whose answer it
	// missed (a request cut short by a stop).
	writeIDAnnotation = "watch.kubekit.io/write-id"
)

// ErrCheckpointConflict is matched by the error of a [ConfigMapCheckpoint]
// save that found the ConfigMap written (or deleted) by another writer since
// this one last read or wrote it. Nothing is overwritten; Run stops at once
// with it (wrapped in [ErrSaveFailed]), naming both writers.
var ErrCheckpointConflict = errors.New("watch: the checkpoint was written by another writer")

// ConfigMapCheckpoint stores the state in a ConfigMap, for stateless Pods.
// Each save is one update (create on the first save), so it is atomic.
//
// Saves are fenced by optimistic concurrency: each save is conditional on
// the resourceVersion this checkpoint last read (Load) or wrote (Save), and
// creates the ConfigMap only if it did not exist then. A save that finds
// the ConfigMap changed by another writer fails with [ErrCheckpointConflict]
// and writes nothing, so two replicas never move each other's position
// back: a leader paused past its Lease (SIGSTOP, a long GC) cannot overwrite
// the position of the leader that replaced it. The writer's identity
// ([WithWriterIdentity]) is kept in the [WriterAnnotation].
//
// A ConfigMap holds at most 1 MiB: about 10,000 known objects; use a file
// checkpoint on a volume for more. The identity needs get, create and
// update on configmaps in the namespace.
type ConfigMapCheckpoint struct {
	k         kubernetes.Interface
	namespace string
	name      string
	writer    string
	writeID   string

	mu   sync.Mutex
	read bool              // a Load or Save ran: head is what it found or wrote
	head *corev1.ConfigMap // nil: the ConfigMap did not exist
}

var _ Checkpoint = (*ConfigMapCheckpoint)(nil)

// ConfigMapOption configures [NewConfigMapCheckpoint].
type ConfigMapOption interface{ applyConfigMap(*configMapOptions) }

type configMapOptionFunc func(*configMapOptions)

func (f configMapOptionFunc) applyConfigMap(o *configMapOptions) { f(o) }

type configMapOptions struct {
	writer string
}

// WithWriterIdentity names this writer in the ConfigMap ([WriterAnnotation])
// and in the [ErrCheckpointConflict] of another writer, e.g. the Pod's name
// or the leader election identity. Default: [DefaultWriterIdentity].
func WithWriterIdentity(id string) ConfigMapOption {
	return configMapOptionFunc(func(o *configMapOptions) { o.writer = id })
}

// DefaultWriterIdentity is the writer identity without
// [WithWriterIdentity]: the hostname (in a Pod, its name), "_", and the
// process ID.
func DefaultWriterIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return host + "_" + strconv.Itoa(os.Getpid())
}

// NewConfigMapCheckpoint returns a checkpoint stored in the ConfigMap
// namespace/name, created by the first save.
func NewConfigMapCheckpoint(k kubernetes.Interface, namespace, name string, opts ...ConfigMapOption) (*ConfigMapCheckpoint, error) {
	o := configMapOptions{writer: DefaultWriterIdentity()}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("watch: NewConfigMapCheckpoint: a nil ConfigMapOption; pass options such as WithWriterIdentity")
		}
		opt.applyConfigMap(&o)
	}
	var errs []error
	if k == nil {
		errs = append(errs, errors.New("watch: NewConfigMapCheckpoint(nil, ...): pass a clientset, e.g. c.Kubernetes()"))
	}
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("watch: NewConfigMapCheckpoint: namespace %q: %s", namespace, msgs[0]))
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("watch: NewConfigMapCheckpoint: name %q: %s", name, msgs[0]))
	}
	if strings.TrimSpace(o.writer) == "" {
		errs = append(errs, fmt.Errorf("watch: WithWriterIdentity(%q): the identity must not be empty; leave the option out for the default (hostname_pid)", o.writer))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &ConfigMapCheckpoint{k: k, namespace: namespace, name: name, writer: o.writer, writeID: rand.String(16)}, nil
}

// Writer returns this checkpoint's writer identity ([WithWriterIdentity]).
func (c *ConfigMapCheckpoint) Writer() string { return c.writer }

// Load reads the ConfigMap; a missing ConfigMap is (nil, nil). The next
// Save is conditional on what it read.
func (c *ConfigMapCheckpoint) Load(ctx context.Context) (*State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cm, err := c.k.CoreV1().ConfigMaps(c.namespace).Get(ctx, c.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		c.read, c.head = true, nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint ConfigMap %s/%s: %w", ErrBadCheckpoint, c.namespace, c.name, err)
	}
	// Even a ConfigMap that does not decode is what the next save replaces
	// (WithResetBadCheckpoint), conditionally.
	c.read, c.head = true, cm
	data, ok := cm.Data[ConfigMapKey]
	if !ok {
		return nil, fmt.Errorf("%w: checkpoint ConfigMap %s/%s has no %q key; delete it to start with a fresh list", ErrBadCheckpoint, c.namespace, c.name, ConfigMapKey)
	}
	s, err := DecodeState([]byte(data))
	if err != nil {
		return nil, fmt.Errorf("checkpoint ConfigMap %s/%s: %w; delete it to start with a fresh list", c.namespace, c.name, err)
	}
	return s, nil
}

// String names the checkpoint in errors and logs: "ConfigMap <namespace>/<name>".
func (c *ConfigMapCheckpoint) String() string { return "ConfigMap " + c.namespace + "/" + c.name }

// maxConfigMapData is the most a ConfigMap's data may hold, keys included
// (the API server's validation).
const maxConfigMapData = 1 << 20

// Save writes s to the ConfigMap, conditional on the resourceVersion the
// last Load or Save of this checkpoint saw; before any, only if the
// ConfigMap does not exist. A ConfigMap written by another writer since is
// an error matching [ErrCheckpointConflict]. A state over the ConfigMap's
// 1 MiB is an error matching [ErrStateTooLarge], returned before any request.
func (c *ConfigMapCheckpoint) Save(ctx context.Context, s *State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := EncodeState(s)
	if err != nil {
		return err
	}
	if n := len(ConfigMapKey) + len(b); n > maxConfigMapData {
		return fmt.Errorf("%w: checkpoint ConfigMap %s/%s: the state of %d objects is %d bytes, a ConfigMap holds at most %d; "+
			"use a FileCheckpoint on a volume, or narrow the watch (WithNamespace, WithLabelSelector)",
			ErrStateTooLarge, c.namespace, c.name, len(s.Objects), n, maxConfigMapData)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err = c.commit(ctx, func(cm *corev1.ConfigMap) {
		cm.Data = map[string]string{ConfigMapKey: string(b)}
	})
	if err != nil {
		return fmt.Errorf("watch: save checkpoint ConfigMap %s/%s (%d bytes): %w", c.namespace, c.name, len(b), err)
	}
	return nil
}

// commit writes the ConfigMap, with fill setting its content, conditional
// on c.head, and makes the result c.head. It returns the ConfigMap it
// replaced (nil if none). A conflict whose winner is this checkpoint itself
// (a write whose answer was lost) is retried once on top of it; any other
// is an ErrCheckpointConflict.
func (c *ConfigMapCheckpoint) commit(ctx context.Context, fill func(*corev1.ConfigMap)) (replaced *corev1.ConfigMap, err error) {
	cms := c.k.CoreV1().ConfigMaps(c.namespace)
	for attempt := 0; ; attempt++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: c.namespace, Name: c.name}}
		if c.read && c.head != nil {
			cm.ObjectMeta = *c.head.ObjectMeta.DeepCopy() // resourceVersion included: the precondition
		}
		if cm.Annotations == nil {
			cm.Annotations = map[string]string{}
		}
		cm.Annotations[WriterAnnotation] = c.writer
		cm.Annotations[writeIDAnnotation] = c.writeID
		fill(cm)
		var out *corev1.ConfigMap
		if cm.ResourceVersion == "" {
			out, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		} else {
			out, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		}
		if err == nil {
			replaced = c.head
			c.read, c.head = true, out
			return replaced, nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) && !(apierrors.IsNotFound(err) && cm.ResourceVersion != "") {
			return nil, err
		}
		cur, gerr := cms.Get(ctx, c.name, metav1.GetOptions{})
		if gerr == nil && cur.Annotations[writeIDAnnotation] == c.writeID && attempt == 0 {
			c.read, c.head = true, cur // our own write, whose answer we missed
			continue
		}
		return nil, c.conflict(cm.ResourceVersion, cur, gerr, err)
	}
}

// conflict describes a save that lost to another writer.
func (c *ConfigMapCheckpoint) conflict(expected string, cur *corev1.ConfigMap, gerr, err error) error {
	seen := "before it existed"
	if expected != "" {
		seen = "at resourceVersion " + expected
	}
	var other string
	switch {
	case apierrors.IsNotFound(gerr):
		other = "deleted by another writer"
	case gerr != nil:
		other = fmt.Sprintf("written by another writer (reading it back failed: %v)", gerr)
	default:
		w := cur.Annotations[WriterAnnotation]
		if w == "" {
			w = "a writer that records no identity"
		}
		other = fmt.Sprintf("written by %q (now at resourceVersion %s)", w, cur.ResourceVersion)
	}
	return fmt.Errorf("%w: %s was %s since %q read or wrote it %s (%v); nothing was overwritten. "+
		"Two processes save the same watch's position: run one at a time (leader election, see package leader) or give each its own checkpoint",
		ErrCheckpointConflict, c, other, c.writer, seen, err)
}
