package watch

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

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

// shardSize is the most compressed state one ConfigMap holds: the API
// server's 1 MiB for data and binaryData, less room for the key.
const shardSize = 1<<20 - 1024

// maxHeadName is the longest head name that leaves room for a shard's
// suffix ("-" + 8 random characters + "-" + up to 4 digits).
const maxHeadName = validation.DNS1123SubdomainMaxLength - 14

// Save writes s to the ConfigMap (and shards, see [ConfigMapCheckpoint]),
// conditional on the resourceVersion the last Load or Save of this
// checkpoint saw; before any, only if the ConfigMap does not exist. A
// ConfigMap written by another writer since is an error matching
// [ErrCheckpointConflict]. A state that needs more than [WithMaxShards]
// shards is an error matching [ErrStateTooLarge], returned before any
// request.
func (c *ConfigMapCheckpoint) Save(ctx context.Context, s *State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s == nil {
		return errors.New("watch: ConfigMapCheckpoint.Save(nil): pass a state")
	}
	b, raw, err := compress(s)
	if err != nil {
		return err
	}
	parts := (len(b) + c.shardSize - 1) / c.shardSize
	if parts > 1 && parts > c.maxShards {
		return fmt.Errorf("%w: checkpoint %s: the state of %d objects is %d bytes compressed (%d as JSON); %d ConfigMaps (WithMaxShards(%d)) hold at most %d; "+
			"allow more shards (WithMaxShards), use a FileCheckpoint on a volume, or narrow the watch (WithNamespace, WithLabelSelector)",
			ErrStateTooLarge, c, len(s.Objects), len(b), raw, max(c.maxShards, 1), c.maxShards, max(c.maxShards, 1)*c.shardSize)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.collect(ctx); err != nil {
		return err
	}
	var shards []shardInfo
	if parts > 1 {
		if shards, err = c.writeShards(ctx, b); err != nil {
			return fmt.Errorf("watch: save checkpoint %s (%d objects, %d bytes compressed): %w", c, len(s.Objects), len(b), err)
		}
	}
	var manifestJSON []byte
	if shards != nil {
		manifestJSON, _ = json.Marshal(manifest{Version: CheckpointFormatVersion, Shards: shards})
	}
	replaced, err := c.commit(ctx, func(cm *corev1.ConfigMap) {
		cm.Data, cm.BinaryData = nil, nil
		if shards == nil {
			cm.BinaryData = map[string][]byte{ConfigMapKey: b}
		} else {
			cm.Data = map[string]string{ConfigMapShardsKey: string(manifestJSON)}
		}
	})
	if err != nil {
		var status apierrors.APIStatus
		if errors.Is(err, ErrCheckpointConflict) || errors.As(err, &status) {
			// The head was not written. After a cut-off request it may have
			// been: its shards stay, and the next save replaces them.
			c.drop(ctx, names(shards))
		}
		return fmt.Errorf("watch: save checkpoint %s (%d objects, %d bytes compressed): %w", c, len(s.Objects), len(b), err)
	}
	if replaced != nil {
		c.drop(ctx, names(shardsOf(replaced)))
	}
	return nil
}

// compress encodes s, sorted by namespace and name so that gzip finds the
// repeats, and gzips it. It returns the compressed and the JSON size.
func compress(s *State) ([]byte, int, error) {
	sorted := *s
	sorted.Objects = slices.Clone(s.Objects)
	slices.SortFunc(sorted.Objects, func(a, b ObjectRef) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	j, err := EncodeState(&sorted)
	if err != nil {
		return nil, 0, err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	_, _ = zw.Write(j) // writes to a bytes.Buffer do not fail
	if err := zw.Close(); err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), len(j), nil
}

// writeShards creates the shards of b, under new names.
func (c *ConfigMapCheckpoint) writeShards(ctx context.Context, b []byte) ([]shardInfo, error) {
	token := rand.String(8)
	var shards []shardInfo
	for i := 0; len(b) > 0; i++ {
		part := b[:min(len(b), c.shardSize)]
		b = b[len(part):]
		sum := sha256.Sum256(part)
		sh := shardInfo{Name: fmt.Sprintf("%s-%s-%d", c.name, token, i), Size: len(part), SHA256: hex.EncodeToString(sum[:])}
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: c.namespace, Name: sh.Name, Annotations: map[string]string{
				shardOfAnnotation: c.name, WriterAnnotation: c.writer,
			}},
			BinaryData: map[string][]byte{shardKey: part},
		}
		if _, err := c.k.CoreV1().ConfigMaps(c.namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			c.drop(ctx, names(shards))
			return nil, fmt.Errorf("create shard %s: %w", sh.Name, err)
		}
		shards = append(shards, sh)
	}
	return shards, nil
}

// drop deletes shards no head names; what cannot be deleted now is retried
// by the next save.
func (c *ConfigMapCheckpoint) drop(ctx context.Context, shards []string) {
	if len(shards) == 0 {
		return
	}
	// Cleanup runs on the way out of a cancelled save too.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, n := range shards {
		err := c.k.CoreV1().ConfigMaps(c.namespace).Delete(dctx, n, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			c.garbage = append(c.garbage, n)
		}
	}
}

// collect deletes the shards earlier deletes left behind. A delete that
// fails again fails the save, so a missing permission is reported.
func (c *ConfigMapCheckpoint) collect(ctx context.Context) error {
	left := c.garbage[:0]
	var errs []error
	for _, n := range c.garbage {
		err := c.k.CoreV1().ConfigMaps(c.namespace).Delete(ctx, n, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			left = append(left, n)
			errs = append(errs, err)
		}
	}
	c.garbage = left
	if len(errs) > 0 {
		return fmt.Errorf("watch: checkpoint %s: deleting %d replaced shards failed (the identity needs delete on configmaps): %w", c, len(left), errors.Join(errs...))
	}
	return nil
}

func shardsOf(cm *corev1.ConfigMap) []shardInfo {
	var man manifest
	if m, ok := cm.Data[ConfigMapShardsKey]; ok && json.Unmarshal([]byte(m), &man) == nil {
		return man.Shards
	}
	return nil
}

func names(shards []shardInfo) []string {
	out := make([]string, len(shards))
	for i, sh := range shards {
		out[i] = sh.Name
	}
	return out
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
