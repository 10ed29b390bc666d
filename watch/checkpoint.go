package watch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// Checkpoint stores a watch's position. Implementations must be safe for
// use by one Run at a time; Save must replace the previous state atomically
// (a crash leaves either the old or the new state) and must not keep s
// after it returns: the Watcher reuses its memory for the next save.
type Checkpoint interface {
	// Load returns the saved state, or (nil, nil) when nothing was saved yet.
	// A corrupt or unreadable checkpoint is an error matching [ErrBadCheckpoint].
	Load(ctx context.Context) (*State, error)
	// Save replaces the saved state with s.
	Save(ctx context.Context, s *State) error
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

type encoded struct {
	Version         int         `json:"version"`
	Resource        string      `json:"resource"`
	ResourceVersion string      `json:"resourceVersion"`
	Objects         []ObjectRef `json:"objects"`
}

// EncodeState encodes s in the versioned checkpoint format (JSON).
func EncodeState(s *State) ([]byte, error) {
	if s == nil {
		return nil, errors.New("watch: EncodeState(nil)")
	}
	return appendState(nil, s), nil
}

// appendState appends the encoding of s to b.
func appendState(b []byte, s *State) []byte {
	// Written by hand, byte for byte what json.Marshal(encoded{...}) writes
	// (a test holds it to that), about 3x faster: with thousands of known
	// objects the encoding, not the fsync, was the bulk of a save.
	b = slices.Grow(b, 96+len(s.Resource)+len(s.ResourceVersion)+len(s.Objects)*128)
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, CheckpointFormatVersion, 10)
	b = append(b, `,"resource":`...)
	b = appendString(b, s.Resource)
	b = append(b, `,"resourceVersion":`...)
	b = appendString(b, s.ResourceVersion)
	b = append(b, `,"objects":[`...)
	for i, o := range s.Objects {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if o.Namespace != "" {
			b = append(b, `"ns":`...)
			b = appendString(b, o.Namespace)
			b = append(b, ',')
		}
		b = append(b, `"n":`...)
		b = appendString(b, o.Name)
		b = append(b, `,"u":`...)
		b = appendString(b, string(o.UID))
		b = append(b, `,"rv":`...)
		b = appendString(b, o.ResourceVersion)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// plainJSON holds the bytes json.Marshal writes as they are inside a string:
// printable ASCII except '"', '\\' and the HTML-escaped '<', '>', '&'.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as a JSON string. Kubernetes names, UIDs and
// resourceVersions need no escaping; anything else goes through
// encoding/json, so the output is exactly json.Marshal's.
func appendString(b []byte, s string) []byte {
	if !plain(s) {
		q, _ := json.Marshal(s) // a string always marshals
		return append(b, q...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain reports whether every byte of s is in plainJSON. It tests eight
// bytes at a time (the checkpoint of a large watch is mostly such bytes);
// it may answer false for a plain string, never true for another.
func plain(s string) bool {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	// zero has the high bit of a byte set if that byte of v is 0 (and
	// maybe of bytes above it: a false alarm, never a miss).
	zero := func(v uint64) uint64 { return (v - ones) & ^v & high }
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		bad := (x-0x20*ones)&^x&high | // a byte below 0x20
			(x+ones|x)&high | // a byte at or above 0x7f
			zero(x^('"'*ones)) | zero(x^('\\'*ones)) | zero(x^('<'*ones)) | zero(x^('>'*ones)) | zero(x^('&'*ones))
		if bad != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if !plainJSON[s[i]] {
			return false
		}
	}
	return true
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

// MemoryCheckpoint keeps the state in memory: a second Run of the same
// Watcher resumes, a new process does not. It is safe for concurrent use.
type MemoryCheckpoint struct {
	mu sync.Mutex
	s  *State
}

var _ Checkpoint = (*MemoryCheckpoint)(nil)

// NewMemoryCheckpoint returns an empty in-memory checkpoint.
func NewMemoryCheckpoint() *MemoryCheckpoint { return &MemoryCheckpoint{} }

// Load returns a copy of the saved state, or nil.
func (m *MemoryCheckpoint) Load(ctx context.Context) (*State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return cloneState(m.s), nil
}

// Save stores a copy of s.
func (m *MemoryCheckpoint) Save(ctx context.Context, s *State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s = cloneState(s)
	return nil
}

func cloneState(s *State) *State {
	if s == nil {
		return nil
	}
	c := *s
	c.Objects = slices.Clone(s.Objects)
	return &c
}

// FileCheckpoint stores the state in a file, replaced atomically on every
// save (temporary file, fsync, rename, fsync of the directory), so a crash
// or power loss leaves the old or the new state, never a torn one.
type FileCheckpoint struct {
	path string
	mu   sync.Mutex
	buf  []byte // the encoding buffer, reused: a save of many objects is large
}

var _ Checkpoint = (*FileCheckpoint)(nil)

// NewFileCheckpoint returns a checkpoint stored at path. The directory must
// exist; the file is created by the first save.
func NewFileCheckpoint(path string) (*FileCheckpoint, error) {
	if path == "" {
		return nil, errors.New("watch: NewFileCheckpoint(\"\"): pass a file path, e.g. /var/lib/app/watch.json")
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("watch: NewFileCheckpoint(%q): directory: %w; create it first", path, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("watch: NewFileCheckpoint(%q): %s is not a directory", path, filepath.Dir(path))
	}
	return &FileCheckpoint{path: path}, nil
}

// Path returns the file's path.
func (f *FileCheckpoint) Path() string { return f.path }

// Load reads the file; a missing file is (nil, nil).
func (f *FileCheckpoint) Load(ctx context.Context) (*State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint file %s: %w", ErrBadCheckpoint, f.path, err)
	}
	s, err := DecodeState(b)
	if err != nil {
		return nil, fmt.Errorf("checkpoint file %s: %w; delete it to start with a fresh list", f.path, err)
	}
	return s, nil
}

// Save writes s to the file atomically.
func (f *FileCheckpoint) Save(ctx context.Context, s *State) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s == nil {
		return errors.New("watch: FileCheckpoint.Save(nil)")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = appendState(f.buf[:0], s)
	b := f.buf
	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("watch: save checkpoint %s: %w", f.path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(b); err != nil {
		return fmt.Errorf("watch: save checkpoint %s: %w", f.path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("watch: save checkpoint %s: fsync: %w", f.path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("watch: save checkpoint %s: %w", f.path, err)
	}
	if err = os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("watch: save checkpoint %s: %w", f.path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("watch: save checkpoint %s: open directory: %w", f.path, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("watch: save checkpoint %s: fsync directory: %w", f.path, err)
	}
	return nil
}
