package watch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/crc64"
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
	b = append(b, `,"objects":`...)
	b = appendRefs(b, s.Objects)
	return append(b, '}')
}

// appendRefs appends the JSON array of refs.
func appendRefs(b []byte, refs []ObjectRef) []byte {
	b = append(b, '[')
	for i, o := range refs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRef(b, o)
	}
	return append(b, ']')
}

// appendRef appends the JSON of o.
func appendRef(b []byte, o ObjectRef) []byte {
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
	return append(b, '}')
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

// DeltaCheckpoint is a [Checkpoint] that can also save only what changed
// since the previous save. A full save writes every known object; for a
// watch of many objects the changes of one batch are much smaller.
// [FileCheckpoint] implements it.
type DeltaCheckpoint interface {
	Checkpoint
	// SaveChanges moves the saved state to c.ResourceVersion, with the
	// objects of c.Upserted added or replaced and those of c.Deleted (by
	// namespace and name) removed. The Watcher calls it only after a
	// successful Save or SaveChanges of the same Run. compact asks for the
	// next save to be a full Save. It must not keep c after it returns.
	SaveChanges(ctx context.Context, c *Changes) (compact bool, err error)
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

// FileCheckpoint stores the state in two files: path holds a full state,
// replaced atomically by every full save (temporary file, fsync, rename,
// fsync of the directory), and path + ".log" the changes since then, one
// checksummed line per save, appended and fsync'd. A crash or power loss
// leaves a saved state, never a torn one: a log that does not belong to the
// file beside it is ignored, and so is a torn last line. A log that grows
// past the size of the full state (and 1 MiB) makes the next save a full one.
type FileCheckpoint struct {
	path string
	mu   sync.Mutex
	buf  []byte // the encoding buffer, reused: a save of many objects is large
	line []byte // the log line buffer
	// Set by Save: the log may be appended to.
	logOK             bool
	baseSize, logSize int
}

var (
	_ Checkpoint      = (*FileCheckpoint)(nil)
	_ DeltaCheckpoint = (*FileCheckpoint)(nil)
)

// minCompact is the log size below which a FileCheckpoint does not ask for
// a full save.
const minCompact = 1 << 20

// NewFileCheckpoint returns a checkpoint stored at path (and path + ".log").
// The directory must exist; the files are created by the first save.
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

// Path returns the path of the file with the full state.
func (f *FileCheckpoint) Path() string { return f.path }

func (f *FileCheckpoint) logPath() string { return f.path + ".log" }

// baseID identifies a full state's file in the header of its log: the
// crc64 of its bytes, 16 hex digits.
func baseID(b []byte) string {
	return fmt.Sprintf("%016x", crc64.Checksum(b, crc64.MakeTable(crc64.ECMA))) // the table is built once
}

// Load reads the full state and applies the log that belongs to it; a
// missing file is (nil, nil).
func (f *FileCheckpoint) Load(ctx context.Context) (*State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logOK = false // the next save is a full one: it also drops a torn log tail
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
	lb, err := os.ReadFile(f.logPath())
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint log %s: %w", ErrBadCheckpoint, f.logPath(), err)
	}
	if err := applyLog(s, baseID(b), lb); err != nil {
		return nil, fmt.Errorf("checkpoint log %s: %w; delete it and %s to start with a fresh list", f.logPath(), err, f.path)
	}
	return s, nil
}

// A log is lines of "<crc32 of the JSON, 8 hex digits> <JSON>\n": first a
// logHeader naming the full state it extends, then one logRecord per save.
type logHeader struct {
	Base string `json:"base"` // baseID of the full state's file
}

type logRecord struct {
	ResourceVersion string      `json:"rv"`
	Upserted        []ObjectRef `json:"up"`
	Deleted         []ObjectRef `json:"del"`
}

// applyLog applies the records of log to s if the log belongs to the file
// with baseID base. Errors match ErrBadCheckpoint.
func applyLog(s *State, base string, log []byte) error {
	// Only the last line can be cut short or left unwritten by a crash
	// (every line is fsync'd before the next is written): a bad last line
	// is a save that did not happen, a bad line before it is corruption.
	lines := splitLines(log)
	if len(lines) == 0 {
		return nil // a new log, torn: the full state alone
	}
	var h logHeader
	if err := decodeLine(lines[0], &h); err != nil {
		if len(lines) == 1 {
			return nil
		}
		return fmt.Errorf("%w: line 1: %w", ErrBadCheckpoint, err)
	}
	if h.Base != base {
		return nil // the log of an older full state, replaced since
	}
	// Changes are applied in place, so the objects keep the full state's
	// order and new ones follow in the order they were saved.
	pos := make(map[objKey]int, len(s.Objects))
	for i, o := range s.Objects {
		pos[key(o.Namespace, o.Name)] = i
	}
	deleted := false
	for i, line := range lines[1:] {
		var r logRecord
		if err := decodeLine(line, &r); err != nil {
			if i == len(lines)-2 {
				break // the last save did not finish: the state before it
			}
			return fmt.Errorf("%w: line %d: %w", ErrBadCheckpoint, i+2, err)
		}
		if r.ResourceVersion == "" {
			return fmt.Errorf("%w: line %d: no resourceVersion", ErrBadCheckpoint, i+2)
		}
		for _, o := range r.Upserted {
			if o.Name == "" || o.ResourceVersion == "" {
				return fmt.Errorf("%w: line %d: an object has no name or resourceVersion", ErrBadCheckpoint, i+2)
			}
			if i, ok := pos[key(o.Namespace, o.Name)]; ok {
				s.Objects[i] = o
			} else {
				pos[key(o.Namespace, o.Name)] = len(s.Objects)
				s.Objects = append(s.Objects, o)
			}
		}
		for _, o := range r.Deleted {
			k := key(o.Namespace, o.Name)
			if i, ok := pos[k]; ok {
				s.Objects[i].Name = "" // every saved object has a name: this marks it gone
				delete(pos, k)
				deleted = true
			}
		}
		s.ResourceVersion = r.ResourceVersion
	}
	if deleted {
		s.Objects = slices.DeleteFunc(s.Objects, func(o ObjectRef) bool { return o.Name == "" })
	}
	return nil
}

// splitLines splits b into lines without their newline; a last line
// without one is a line too.
func splitLines(b []byte) (lines [][]byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return append(lines, b)
		}
		lines = append(lines, b[:i])
		b = b[i+1:]
	}
	return lines
}

func decodeLine(line []byte, v any) error {
	if len(line) < 10 || line[8] != ' ' {
		return errors.New("not a checkpoint log line")
	}
	want, err := strconv.ParseUint(string(line[:8]), 16, 32)
	if err != nil {
		return errors.New("not a checkpoint log line")
	}
	body := line[9:]
	if crc32.ChecksumIEEE(body) != uint32(want) {
		return errors.New("checksum mismatch")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// appendLine appends body as a log line.
func appendLine(b, body []byte) []byte {
	b = fmt.Appendf(b, "%08x ", crc32.ChecksumIEEE(body))
	b = append(b, body...)
	return append(b, '\n')
}

// Save writes s as the full state and starts a new, empty log.
func (f *FileCheckpoint) Save(ctx context.Context, s *State) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s == nil {
		return errors.New("watch: FileCheckpoint.Save(nil)")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logOK = false
	f.buf = appendState(f.buf[:0], s)
	n := len(f.buf)
	h, _ := json.Marshal(logHeader{Base: baseID(f.buf)}) // a struct of one string always marshals
	header := appendLine(nil, h)
	dir := filepath.Dir(f.path)
	// The full state first, then its log: after a crash between the two
	// renames the old log names the old state and is ignored.
	baseTmp, err := writeTemp(dir, f.path, f.buf)
	if err != nil {
		return err
	}
	logTmp, err := writeTemp(dir, f.logPath(), header)
	if err != nil {
		_ = os.Remove(baseTmp)
		return err
	}
	if err = os.Rename(baseTmp, f.path); err != nil {
		_ = os.Remove(baseTmp)
		_ = os.Remove(logTmp)
		return fmt.Errorf("watch: save checkpoint %s: %w", f.path, err)
	}
	if err = os.Rename(logTmp, f.logPath()); err != nil {
		_ = os.Remove(logTmp)
		return fmt.Errorf("watch: save checkpoint %s: %w", f.logPath(), err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("watch: save checkpoint %s: open directory: %w", f.path, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("watch: save checkpoint %s: fsync directory: %w", f.path, err)
	}
	f.logOK, f.baseSize, f.logSize = true, n, len(header)
	return nil
}

// writeTemp writes b to a new temporary file next to path, fsync'd, and
// returns its name.
func writeTemp(dir, path string, b []byte) (name string, err error) {
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("watch: save checkpoint %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(b); err != nil {
		return "", fmt.Errorf("watch: save checkpoint %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return "", fmt.Errorf("watch: save checkpoint %s: fsync: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return "", fmt.Errorf("watch: save checkpoint %s: %w", path, err)
	}
	return tmp.Name(), nil
}

// SaveChanges appends c to the log and fsyncs it. It needs a Save by this
// FileCheckpoint first (not a Load: a torn log tail must be dropped first).
func (f *FileCheckpoint) SaveChanges(ctx context.Context, c *Changes) (compact bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if c == nil {
		return false, errors.New("watch: FileCheckpoint.SaveChanges(nil)")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.logOK {
		return true, fmt.Errorf("watch: checkpoint %s: SaveChanges needs a full Save first", f.path)
	}
	f.buf = appendRecord(f.buf[:0], c)
	f.line = appendLine(f.line[:0], f.buf)
	lf, err := os.OpenFile(f.logPath(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		f.logOK = false
		return true, fmt.Errorf("watch: save checkpoint %s: %w", f.logPath(), err)
	}
	_, werr := lf.Write(f.line)
	serr := lf.Sync()
	cerr := lf.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		f.logOK = false // a torn line may follow: the next save must be a full one
		return true, fmt.Errorf("watch: save checkpoint %s: %w", f.logPath(), err)
	}
	f.logSize += len(f.line)
	return f.logSize > max(f.baseSize, minCompact), nil
}

// appendRecord appends the JSON of a logRecord for c (as encoding/json
// writes it, except that an empty list is [] rather than null).
func appendRecord(b []byte, c *Changes) []byte {
	b = append(b, `{"rv":`...)
	b = appendString(b, c.ResourceVersion)
	b = append(b, `,"up":`...)
	b = appendRefs(b, c.Upserted)
	b = append(b, `,"del":`...)
	b = appendRefs(b, c.Deleted) // Namespace and Name only, per Changes
	return append(b, '}')
}
