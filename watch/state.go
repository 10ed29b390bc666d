package watch

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// Checkpoint stores a watch's position. Implementations must be safe for
// use by one Run at a time, and Save must replace the previous state
// atomically: a crash leaves either the old or the new state.
type Checkpoint interface {
	// Load returns the saved state, or (nil, nil) when nothing was saved yet.
	// A corrupt or unreadable checkpoint is an error matching [ErrBadCheckpoint].
	Load(ctx context.Context) (*State, error)
	// Save replaces the saved state with s. A state the store can never
	// hold is an error matching [ErrStateTooLarge]: Run stops at once.
	Save(ctx context.Context, s *State) error
}

// DeltaCheckpoint is a [Checkpoint] that can also save only what changed
// since the previous save. A full save writes every known object; for a
// watch of many objects the changes of one batch are much smaller. How the
// changes are stored, and when they are folded into a full state, is the
// implementation's business. [FileCheckpoint] implements it.
type DeltaCheckpoint interface {
	Checkpoint
	// SaveChanges moves the saved state to c.ResourceVersion, with the
	// objects of c.Upserted added or replaced and those of c.Deleted (by
	// namespace and name) removed. The Watcher calls it only after a Load
	// that returned a state, or a successful Save or SaveChanges, of the
	// same Run; after a failed save it saves in full again.
	SaveChanges(ctx context.Context, c *Changes) error
}

// State is what a checkpoint holds.
type State struct {
	// Resource identifies the watch (resource, namespace, selectors); a
	// checkpoint of another watch is rejected with [ErrCheckpointMismatch].
	Resource string
	// ResourceVersion is the position: every event up to it was handled.
	ResourceVersion string
	// Objects are the objects known at ResourceVersion, in no particular
	// order: what gap recovery after a 410 Gone compares a new list with.
	Objects []ObjectRef
}

// ObjectRef is the compact record of one known object.
type ObjectRef struct {
	Namespace       string    `json:"ns,omitempty"`
	Name            string    `json:"n"`
	UID             types.UID `json:"u"`
	ResourceVersion string    `json:"rv"`
}

// Changes is what changed since the previous save, for [DeltaCheckpoint].
type Changes struct {
	// Resource and ResourceVersion are as in [State].
	Resource        string
	ResourceVersion string
	// Upserted are the objects added or changed, as they are now.
	Upserted []ObjectRef
	// Deleted are the objects deleted; only Namespace and Name are set.
	Deleted []ObjectRef
}

// CheckpointFormatVersion is the version of the encoding written by
// [FileCheckpoint] and [ConfigMapCheckpoint].
const CheckpointFormatVersion = 1

// ErrBadCheckpoint is matched (errors.Is) by errors about a checkpoint
// that cannot be read or decoded.
var ErrBadCheckpoint = errors.New("watch: bad checkpoint")

// ErrCheckpointMismatch is matched by the error Run returns when the
// checkpoint belongs to another watch (another resource, namespace or
// selector).
var ErrCheckpointMismatch = errors.New("watch: checkpoint belongs to another watch")

// ErrStateTooLarge is matched by the error of a Save whose state its store
// cannot hold (a ConfigMap holds at most 1 MiB). Retrying cannot fix it, so
// Run returns it at once.
var ErrStateTooLarge = errors.New("watch: state too large for its checkpoint")

// ErrSaveFailed is matched by the error Run returns when no checkpoint save
// succeeded for [WithSaveRetryTimeout], or a save failed in a way retrying
// cannot fix ([ErrStateTooLarge]). The handled events are not lost from the
// stream, but a restart would deliver them again.
var ErrSaveFailed = errors.New("watch: saving the checkpoint failed")

type encoded struct {
	Version         int         `json:"version"`
	Resource        string      `json:"resource"`
	ResourceVersion string      `json:"resourceVersion"`
	Objects         []ObjectRef `json:"objects"`
}

// EncodeState encodes s in the versioned checkpoint format (JSON).
func EncodeState(s *State) ([]byte, error) {
	if s == nil {
		return nil, errors.New("watch: EncodeState(nil): pass a state")
	}
	objs := s.Objects
	if objs == nil {
		objs = []ObjectRef{} // "objects":[], as DecodeState documents the field
	}
	b := make([]byte, 0, len(s.Resource)+len(s.ResourceVersion)+refsSize(objs)+64)
	return appendEncoded(b, encoded{Version: CheckpointFormatVersion, Resource: s.Resource, ResourceVersion: s.ResourceVersion, Objects: objs}), nil
}

// DecodeState decodes what EncodeState wrote. Errors match [ErrBadCheckpoint].
func DecodeState(b []byte) (*State, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var e encoded
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("%w: not a kubekit watch checkpoint: %w", ErrBadCheckpoint, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the checkpoint", ErrBadCheckpoint)
	}
	if e.Version != CheckpointFormatVersion {
		return nil, fmt.Errorf("%w: format version %d, this kubekit reads version %d", ErrBadCheckpoint, e.Version, CheckpointFormatVersion)
	}
	if e.Resource == "" || e.ResourceVersion == "" {
		return nil, fmt.Errorf("%w: missing resource or resourceVersion", ErrBadCheckpoint)
	}
	for i, o := range e.Objects {
		if o.Name == "" || o.ResourceVersion == "" {
			return nil, fmt.Errorf("%w: object %d has no name or resourceVersion", ErrBadCheckpoint, i)
		}
	}
	return &State{Resource: e.Resource, ResourceVersion: e.ResourceVersion, Objects: e.Objects}, nil
}

// objKey identifies an object; a struct, not "ns/name", so the per-event
// bookkeeping does not allocate.
type objKey struct{ ns, name string }

func key(ns, name string) objKey { return objKey{ns, name} }

func (k objKey) String() string {
	if k.ns == "" {
		return k.name
	}
	return k.ns + "/" + k.name
}

func compareKeys(a, b objKey) int {
	return cmp.Or(strings.Compare(a.ns, b.ns), strings.Compare(a.name, b.name))
}
