package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc64"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// FileCheckpoint stores the state in two files: path holds a full state,
// replaced atomically by every full save (temporary file, fsync, rename,
// fsync of the directory), and path + ".log" the changes since then, one
// checksummed line per save, appended and fsync'd. A crash or power loss
// leaves a saved state, never a torn one: a log that does not belong to the
// file beside it is ignored, and so is a torn last line. When the log grows
// past the size of the full state (and 4 MiB), or Load found it torn or
// foreign, the next SaveChanges folds it into a new full state.
type FileCheckpoint struct {
	path string
	mu   sync.Mutex
	// filesOK: the files hold what the last Load returned or the last save
	// wrote, so SaveChanges may append to the log or fold it. logSize: the
	// log's length; 0 when it may not be appended to (Load found it torn,
	// foreign or missing), and SaveChanges folds it.
	filesOK           bool
	baseSize, logSize int
	lineBuf           []byte // the last log line's memory, for the next
}

var (
	_ Checkpoint      = (*FileCheckpoint)(nil)
	_ DeltaCheckpoint = (*FileCheckpoint)(nil)
)

// keepLine is the largest log line buffer kept for the next SaveChanges.
const keepLine = 2 << 20

// minCompact is the log size below which a FileCheckpoint does not fold its
// log into a new full state: a state smaller than that is rewritten once
// per 4 MiB of changes, and a Load replays at most 4 MiB of log (about
// 38,000 object changes, 69 ms; 21 ms for 1 MiB, the floor before, at
// which a 10,000-event watch from an empty state already folded once).
const minCompact = 4 << 20

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
		return nil, fmt.Errorf("watch: NewFileCheckpoint(%q): %s is not a directory; pass a path in an existing directory", path, filepath.Dir(path))
	}
	return &FileCheckpoint{path: path}, nil
}

// Path returns the path of the file with the full state.
func (f *FileCheckpoint) Path() string { return f.path }

// String names the checkpoint in errors and logs: "file <path>".
func (f *FileCheckpoint) String() string { return "file " + f.path }

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
	f.filesOK = false
	s, base, whole, err := f.load()
	if err != nil || s == nil {
		return s, err
	}
	// A whole log is appended to; a torn one (or none, or another file's)
	// is folded into a new full state by the first SaveChanges, which so
	// drops the torn tail.
	f.filesOK, f.baseSize, f.logSize = true, base, whole
	return s, nil
}

// load reads the state, and returns with it the size of the full state's
// file and the length of the log that may be appended to (0: none).
func (f *FileCheckpoint) load() (s *State, base, whole int, err error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, 0, nil
	}
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: checkpoint file %s: %w", ErrBadCheckpoint, f.path, err)
	}
	s, err = DecodeState(b)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("checkpoint file %s: %w; delete it to start with a fresh list", f.path, err)
	}
	lb, err := os.ReadFile(f.logPath())
	if errors.Is(err, fs.ErrNotExist) {
		return s, len(b), 0, nil
	}
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: checkpoint log %s: %w", ErrBadCheckpoint, f.logPath(), err)
	}
	whole, err = applyLog(s, baseID(b), lb)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("checkpoint log %s: %w; delete it and %s to start with a fresh list", f.logPath(), err, f.path)
	}
	return s, len(b), whole, nil
}

// Save writes s as the full state and starts a new, empty log.
func (f *FileCheckpoint) Save(ctx context.Context, s *State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s == nil {
		return errors.New("watch: FileCheckpoint.Save(nil): pass a state")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.save(s)
}

func (f *FileCheckpoint) save(s *State) error {
	f.filesOK = false
	b, err := EncodeState(s)
	if err != nil {
		return err
	}
	h, err := json.Marshal(logHeader{Base: baseID(b)})
	if err != nil {
		return err
	}
	header := logLine(h)
	dir := filepath.Dir(f.path)
	// The full state first, then its log: after a crash between the two
	// renames the old log names the old state and is ignored.
	baseTmp, err := writeTemp(dir, f.path, b)
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
	f.filesOK, f.baseSize, f.logSize = true, len(b), len(header)
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

// SaveChanges appends c to the log and fsyncs it. When the log has grown
// past the full state (and 4 MiB), or Load found it torn (or none that
// belongs to the full state), it writes the full state with c applied and
// starts a new log instead. It needs a successful Load that returned a
// state, Save or SaveChanges of this FileCheckpoint first; after a failed
// one, a Save.
func (f *FileCheckpoint) SaveChanges(ctx context.Context, c *Changes) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c == nil {
		return errors.New("watch: FileCheckpoint.SaveChanges(nil): pass the changes")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.filesOK {
		return fmt.Errorf("watch: checkpoint %s: SaveChanges needs a state loaded or saved first (after a failed save: a full Save)", f.path)
	}
	if f.logFull() {
		return f.compact(c)
	}
	r := newLogRecord(c)
	// One buffer, sized once, kept for the next line (see lineBuffer).
	line := finishLine(appendLogRecord(f.lineBuffer(lineHead+len(r.ResourceVersion)+refsSize(r.Upserted)+refsSize(r.Deleted)+32), r))
	if cap(line) <= keepLine {
		f.lineBuf = line
	}
	lf, err := os.OpenFile(f.logPath(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		f.filesOK = false
		return fmt.Errorf("watch: save checkpoint %s: %w", f.logPath(), err)
	}
	_, werr := lf.Write(line)
	serr := lf.Sync()
	cerr := lf.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		f.filesOK = false // a torn line may follow: the next save must be a full one
		return fmt.Errorf("watch: save checkpoint %s: %w", f.logPath(), err)
	}
	f.logSize += len(line)
	return nil
}

// lineBuffer returns lineHead bytes of room for a log line's checksum, with
// capacity for n bytes, in the last line's memory when it is large enough.
// A Watcher saves a line every 1,000 events by default: at 10,000 events
// (BenchmarkWatchEvents, kubekit's side alone) a new buffer each time was
// 1.1 MB of the 4.9 MB it allocated per run beyond the raw watch's 16 MB;
// the rates moved less than the benchmark's noise.
func (f *FileCheckpoint) lineBuffer(n int) []byte {
	if cap(f.lineBuf) >= n {
		return f.lineBuf[:lineHead]
	}
	return make([]byte, lineHead, n)
}

// compacter is a DeltaCheckpoint of this package that says when its next
// SaveChanges would fold its log into a full state; the saver then saves
// the known set in full, which it holds anyway.
type compacter interface{ compactDue() bool }

// compactDue says whether the next SaveChanges would write a new full state
// (the log has grown past the full state, Load found it torn, or the files
// are not known to hold the last save). A Watcher asks before each save of
// changes and, when it is due, saves its full state from memory with Save:
// an encode, instead of compact's read-back and decode of both files
// (BenchmarkCompaction, 10,000 objects and a 4 MiB log: 62 ms and 35 MB
// read back, 5 ms and 1.1 MB from memory; with a 1 MiB log, 35 ms read
// back, which on a 10,000-event watch was most of the checkpoint's CPU).
func (f *FileCheckpoint) compactDue() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.filesOK || f.logFull()
}

// logFull says whether the log may not take more changes: it is torn or
// foreign (logSize 0), or it has grown past the full state (and 4 MiB).
// Call it with f.mu held.
func (f *FileCheckpoint) logFull() bool {
	return f.logSize == 0 || f.logSize > max(f.baseSize, minCompact)
}

// compact folds the log and c into a new full state. It reads the files
// back: compaction is rare (once per log the size of the full state, or
// after a Load of a torn log), and keeping a copy of the state in memory
// would double the Watcher's. A Watcher does not come here (compactDue);
// callers of SaveChanges alone do.
func (f *FileCheckpoint) compact(c *Changes) error {
	s, _, _, err := f.load()
	if err != nil {
		f.filesOK = false
		return fmt.Errorf("watch: checkpoint %s: compact the log: %w", f.path, err)
	}
	if s == nil {
		f.filesOK = false
		return fmt.Errorf("watch: checkpoint %s: compact the log: the file is gone", f.path)
	}
	applyChanges(s, []logRecord{newLogRecord(c)})
	return f.save(s)
}
