package watch

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// Keys of the ConfigMaps [ConfigMapCheckpoint] writes.
const (
	// ConfigMapKey is the binaryData key under which the state is stored,
	// gzip-compressed JSON (the format of [EncodeState]), when it fits into
	// the one ConfigMap. (kubekit before sharding wrote plain JSON under the
	// data key of this name; Load still reads it.)
	ConfigMapKey = "checkpoint"
	// ConfigMapShardsKey is the data key of the head ConfigMap that names the
	// shards holding a larger state, in order, with their sizes and SHA-256
	// checksums (JSON).
	ConfigMapShardsKey = "shards"
	// shardKey is the binaryData key of a shard's part of the compressed state.
	shardKey = "part"
	// shardOfAnnotation names, on a shard, the head ConfigMap it belongs to.
	shardOfAnnotation = "watch.kubekit.io/shard-of"
)

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
// Each save commits with one update of that ConfigMap (create on the first
// save), so it is atomic.
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
// The state is gzip-compressed JSON, sorted by namespace and name (about 35
// bytes per object with realistic names and UIDs; see the package doc).
// A ConfigMap holds at most 1 MiB; a larger state is spread over shards,
// ConfigMaps named <name>-<random>-<i>, committed atomically through the
// ConfigMap namespace/name, the head: a save creates new shards, then
// updates the head (conditionally, as above) to name them with their
// checksums, then deletes the shards the head named before. Load reads the
// head, then the shards it names, and checks their sizes and checksums. A
// crash between the shards and the head leaves the old state intact and
// the new shards behind (annotated watch.kubekit.io/shard-of=<name>).
// [WithMaxShards] bounds the shards (default 32: about 30 MB compressed,
// about a million objects); a larger state fails at once with
// [ErrStateTooLarge].
//
// The identity needs get, create, update and delete on configmaps in the
// namespace.
type ConfigMapCheckpoint struct {
	k         kubernetes.Interface
	namespace string
	name      string
	writer    string
	writeID   string
	maxShards int
	shardSize int // bytes of compressed state per ConfigMap

	mu      sync.Mutex
	read    bool              // a Load or Save ran: head is what it found or wrote
	head    *corev1.ConfigMap // nil: the ConfigMap did not exist
	garbage []string          // shards no head names, whose delete failed
}

var _ Checkpoint = (*ConfigMapCheckpoint)(nil)

// ConfigMapOption configures [NewConfigMapCheckpoint].
type ConfigMapOption interface{ applyConfigMap(*configMapOptions) }

type configMapOptionFunc func(*configMapOptions)

func (f configMapOptionFunc) applyConfigMap(o *configMapOptions) { f(o) }

type configMapOptions struct {
	writer    string
	maxShards int
}

// DefaultMaxShards is the default of [WithMaxShards].
const DefaultMaxShards = 32

// WithMaxShards sets how many shard ConfigMaps (besides the head) a state
// may spread over, each holding about 1 MB of compressed state; 0 keeps the
// state in the one ConfigMap. Default [DefaultMaxShards]. A state that
// needs more fails at once with [ErrStateTooLarge].
func WithMaxShards(n int) ConfigMapOption {
	return configMapOptionFunc(func(o *configMapOptions) { o.maxShards = n })
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
	o := configMapOptions{writer: DefaultWriterIdentity(), maxShards: DefaultMaxShards}
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
	} else if len(name) > maxHeadName {
		errs = append(errs, fmt.Errorf("watch: NewConfigMapCheckpoint: name %q is %d characters; use at most %d (shards append a suffix)", name, len(name), maxHeadName))
	}
	if o.maxShards < 0 || o.maxShards > 1000 {
		errs = append(errs, fmt.Errorf("watch: WithMaxShards(%d): must be 0 to 1000; leave the option out for the default (%d)", o.maxShards, DefaultMaxShards))
	}
	if strings.TrimSpace(o.writer) == "" {
		errs = append(errs, fmt.Errorf("watch: WithWriterIdentity(%q): the identity must not be empty; leave the option out for the default (hostname_pid)", o.writer))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &ConfigMapCheckpoint{k: k, namespace: namespace, name: name, writer: o.writer, writeID: rand.String(16),
		maxShards: o.maxShards, shardSize: shardSize}, nil
}

// Writer returns this checkpoint's writer identity ([WithWriterIdentity]).
func (c *ConfigMapCheckpoint) Writer() string { return c.writer }

// Load reads the ConfigMap, and the shards it names; a missing ConfigMap is
// (nil, nil). The next Save is conditional on what it read.
func (c *ConfigMapCheckpoint) Load(ctx context.Context) (*State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cms := c.k.CoreV1().ConfigMaps(c.namespace)
	for attempt := 1; ; attempt++ {
		cm, err := cms.Get(ctx, c.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			c.read, c.head = true, nil
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: checkpoint %s: %w", ErrBadCheckpoint, c, err)
		}
		// Even a ConfigMap that does not decode is what the next save replaces
		// (WithResetBadCheckpoint), conditionally.
		c.read, c.head = true, cm
		b, err := c.content(ctx, cm)
		if errors.Is(err, errShardGone) && attempt < 3 {
			continue // a writer replaced the shards after we read the head: read it again
		}
		if err != nil {
			return nil, fmt.Errorf("%w: checkpoint %s: %w; delete it to start with a fresh list", ErrBadCheckpoint, c, err)
		}
		s, err := DecodeState(b)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w; delete it to start with a fresh list", c, err)
		}
		return s, nil
	}
}

var errShardGone = errors.New("a shard the head names is gone")

// content returns the encoded state cm holds: inline (compressed, or plain
// JSON as kubekit wrote before), or in the shards it names.
func (c *ConfigMapCheckpoint) content(ctx context.Context, cm *corev1.ConfigMap) ([]byte, error) {
	if b, ok := cm.BinaryData[ConfigMapKey]; ok {
		return gunzip(b)
	}
	if m, ok := cm.Data[ConfigMapShardsKey]; ok {
		var man manifest
		if err := json.Unmarshal([]byte(m), &man); err != nil {
			return nil, fmt.Errorf("the %q key is not a shard list: %w", ConfigMapShardsKey, err)
		}
		if man.Version != CheckpointFormatVersion || len(man.Shards) == 0 {
			return nil, fmt.Errorf("the %q key has format version %d and %d shards, this kubekit reads version %d", ConfigMapShardsKey, man.Version, len(man.Shards), CheckpointFormatVersion)
		}
		var all []byte
		for i, sh := range man.Shards {
			part, err := c.k.CoreV1().ConfigMaps(c.namespace).Get(ctx, sh.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("shard %d, ConfigMap %s: %w", i, sh.Name, errShardGone)
			}
			if err != nil {
				return nil, fmt.Errorf("shard %d, ConfigMap %s: %w", i, sh.Name, err)
			}
			b := part.BinaryData[shardKey]
			if sum := sha256.Sum256(b); len(b) != sh.Size || hex.EncodeToString(sum[:]) != sh.SHA256 {
				return nil, fmt.Errorf("shard %d, ConfigMap %s: %d bytes with SHA-256 %x, the head says %d bytes with %s", i, sh.Name, len(b), sum, sh.Size, sh.SHA256)
			}
			all = append(all, b...)
		}
		return gunzip(all)
	}
	if d, ok := cm.Data[ConfigMapKey]; ok {
		return []byte(d), nil
	}
	return nil, fmt.Errorf("no %q or %q key", ConfigMapKey, ConfigMapShardsKey)
}

// manifest is what the head's ConfigMapShardsKey holds.
type manifest struct {
	Version int         `json:"version"`
	Shards  []shardInfo `json:"shards"`
}

type shardInfo struct {
	Name   string `json:"name"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("not gzip data: %w", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("corrupt gzip data: %w", err)
	}
	return out, nil
}

// String names the checkpoint in errors and logs: "ConfigMap <namespace>/<name>".
func (c *ConfigMapCheckpoint) String() string { return "ConfigMap " + c.namespace + "/" + c.name }
