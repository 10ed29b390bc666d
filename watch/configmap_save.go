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
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation"
)

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
