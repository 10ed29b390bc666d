package watch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
)

// saver owns what the checkpoint holds: the position, the known set of
// objects (key, UID, resourceVersion) that gap recovery compares a re-list
// with, the changes handled since the last save, and the one-at-a-time
// background save. Run's goroutine calls its methods; only the background
// save runs elsewhere, and while it runs (busy) it owns the known set, so
// every method that reads the known set first waits for it (sync).
type saver struct {
	cp       Checkpoint
	delta    DeltaCheckpoint // cp, if it saves changes
	compact  compacter       // cp, if it says when its log is due for folding
	name     string          // how logs and errors name cp
	identity string
	log      logr.Logger

	batch        int           // unsaved events that make a save due
	interval     time.Duration // how long the first unsaved event may wait
	maxPending   int           // pending changes that make delivery wait for the save
	retryTimeout time.Duration // how long saves may fail before Run gives up
	backoff      wait.Backoff  // between failed saves
	metrics      func(took time.Duration, err error)

	known    map[objKey]ref
	pending  []change
	rv       string
	unsaved  int       // handled events (and position moves) not saved yet
	firstNew time.Time // when the first unsaved one was handled
	needFull bool      // the first save without a loaded state, and the one after a failure
	spareBuf []change  // a saved batch whose memory pending reuses
	// spareRefs is the last Changes' memory, for the next; only with a
	// checkpoint of this package (s.compact set), which keeps nothing it is
	// given. Only write uses it, and writes run one at a time.
	spareRefs []ObjectRef

	busy    bool
	jobs    chan saveJob
	results chan saveResult
	stopped chan struct{}

	fenced       bool      // a save lost to another writer: never write again
	failingSince time.Time // zero while saves succeed
	attempts     int       // failed saves since failingSince
	retryAt      time.Time
	bo           wait.Backoff
}

// maxPending bounds the changes that wait while a save runs: past it,
// delivery waits for the save (a checkpoint far slower than the stream).
const maxPending = 1 << 16

// keepBuf is the largest batch whose memory is kept for the next one.
const keepBuf = 1 << 14

// saveJob is one save: the changes handled since the last one, to fold into
// the known set, and the position they reach.
type saveJob struct {
	batch []change
	rv    string
	full  bool
}

// saveResult is a save's outcome.
type saveResult struct {
	batch []change // for reuse
	err   error
}

// errSaveInterrupted reports a background save cut short because Run is
// stopping; the final save writes the state instead, so it is not logged.
var errSaveInterrupted = errors.New("checkpoint save interrupted by the stop")

func newSaver(o *options, identity string, log logr.Logger) *saver {
	s := &saver{
		cp: o.checkpoint, identity: identity, log: log,
		batch: o.checkpointEvents, interval: o.checkpointInterval, maxPending: o.maxPending,
		retryTimeout: o.saveRetryTimeout, backoff: o.backoff,
		known: map[objKey]ref{}, needFull: true,
	}
	s.delta, _ = o.checkpoint.(DeltaCheckpoint)
	s.compact, _ = o.checkpoint.(compacter)
	s.name = checkpointName(o.checkpoint)
	return s
}

// observeSaves reports each checkpoint write to m.
func (s *saver) observeSaves(m Metrics, resource string) {
	if m != nil {
		s.metrics = func(took time.Duration, err error) { m.CheckpointSaved(resource, took, err) }
	}
}

func checkpointName(cp Checkpoint) string {
	if s, ok := cp.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", cp)
}

// start runs the background saves until stop. Saves run in the background
// so a slow Save (an fsync, an API call) does not hold up delivery; one at
// a time, newest state last.
func (s *saver) start(ctx context.Context) {
	s.jobs, s.results, s.stopped = make(chan saveJob), make(chan saveResult, 1), make(chan struct{})
	go func() {
		defer close(s.stopped)
		for job := range s.jobs {
			res := s.write(ctx, job)
			if res.err != nil && ctx.Err() != nil && !errors.Is(res.err, ErrCheckpointConflict) {
				res.err = errSaveInterrupted // the final save on the way out takes over
			}
			s.results <- res
		}
	}()
}

// position is the resourceVersion every handled event reaches.
func (s *saver) position() string { return s.rv }

// record notes a handled change for the next save.
func (s *saver) record(c change) {
	s.pending = append(s.pending, c)
	s.touch()
}

// moveTo moves the position; a move without an event (a bookmark, the end
// of a list) counts as unsaved too.
func (s *saver) moveTo(rv string, counts bool) {
	s.rv = rv
	if counts {
		s.touch()
	}
}

func (s *saver) touch() {
	if s.unsaved == 0 {
		s.firstNew = time.Now()
	}
	s.unsaved++
}

// sync brings the known set up to date for Run's goroutine: it waits for
// the running save and folds in the pending changes. They stay pending, so
// the next save still writes them (folding again changes nothing).
func (s *saver) sync() error {
	err := s.wait()
	s.fold(s.pending)
	return err
}

// saveIfDue hands the pending changes to the background save when a batch
// is full, the first unsaved change waited for the interval, or now is set
// (a bookmark). It does nothing while a save runs, or while a failed one
// waits for its retry, unless maxPending changes wait: then delivery waits
// too. The error is Run's: saves failed for too long.
func (s *saver) saveIfDue(ctx context.Context, now bool) error {
	if ctx.Err() != nil {
		return nil // the final save on the way out writes them, once
	}
	full := len(s.pending) >= s.maxPending
	if s.busy {
		if full {
			select {
			case res := <-s.results:
				if err := s.saved(res); err != nil {
					return err
				}
			case <-ctx.Done():
				return nil
			}
		} else {
			select {
			case res := <-s.results:
				if err := s.saved(res); err != nil {
					return err
				}
			default:
				return nil
			}
		}
	}
	if s.unsaved == 0 || s.rv == "" {
		return nil
	}
	if s.attempts > 0 { // after a failure: a retry is due, or delivery waits for it
		d := time.Until(s.retryAt)
		if d > 0 && !full {
			return nil
		}
		if d > 0 && !sleep(ctx, d) {
			return nil
		}
	} else if !now && !full && s.unsaved < s.batch && time.Since(s.firstNew) < s.interval {
		return nil
	}
	s.jobs <- s.job()
	s.busy, s.unsaved = true, 0
	return nil
}

// saveNow waits for a running save and saves now, in Run's goroutine,
// unless a failed save waits for its retry.
func (s *saver) saveNow(ctx context.Context) error {
	if err := s.wait(); err != nil {
		return err
	}
	if s.unsaved == 0 || s.rv == "" || time.Now().Before(s.retryAt) {
		return nil
	}
	res := s.write(ctx, s.job())
	if res.err != nil && ctx.Err() != nil && !errors.Is(res.err, ErrCheckpointConflict) {
		res.err = errSaveInterrupted // Run is stopping: the final save takes over
	}
	s.unsaved = 0
	return s.saved(res)
}

// stop ends the background saves and saves what is left, with ctx (not
// cancelled, bounded) for the last write. It returns nil once that write
// succeeded, whatever failed before: then nothing handled is lost.
func (s *saver) stop(ctx context.Context) error {
	werr := s.wait()
	close(s.jobs)
	<-s.stopped
	if s.unsaved == 0 || s.rv == "" || s.fenced {
		return werr
	}
	res := s.write(ctx, s.job())
	s.unsaved = 0
	switch {
	case res.err == nil:
		return nil
	case errors.Is(res.err, ErrStateTooLarge), errors.Is(res.err, ErrCheckpointConflict):
		return fmt.Errorf("%w: watch %s: %w", ErrSaveFailed, s.identity, res.err)
	}
	return fmt.Errorf("%w: watch %s: checkpoint %s: the last save before stopping: %w; %s",
		ErrSaveFailed, s.identity, s.name, res.err, saveFix)
}

// saveFix is what a failing save's error tells the user to do.
const saveFix = "make the checkpoint writable (a file: its directory writable, with free space; " +
	"a ConfigMap: get, create, update and delete permission on configmaps) or use another one"

// wait waits for the running background save, if any.
func (s *saver) wait() error {
	if !s.busy {
		return nil
	}
	return s.saved(<-s.results)
}

// saved records a save's outcome. A failed save is retried, in full, with
// backoff; after retryTimeout of failures, or at once for a state the
// store cannot hold or a save another writer fenced off (then nothing is
// written any more), the error is returned for Run to stop with.
func (s *saver) saved(res saveResult) error {
	s.busy = false
	if cap(res.batch) <= keepBuf { // not the memory of a large re-list
		s.spareBuf = res.batch[:0]
	}
	if res.err == nil {
		if s.attempts > 0 {
			s.log.Info("saving the checkpoint works again", "checkpoint", s.name, "failedAttempts", s.attempts)
		}
		s.failingSince, s.attempts, s.retryAt = time.Time{}, 0, time.Time{}
		return nil
	}
	s.touch() // save again later, in full
	s.needFull = true
	if errors.Is(res.err, errSaveInterrupted) {
		return nil
	}
	now := time.Now()
	if s.attempts == 0 {
		s.failingSince, s.bo = now, s.backoff
	}
	s.attempts++
	if errors.Is(res.err, ErrCheckpointConflict) {
		s.fenced = true // another writer owns the checkpoint now
		return fmt.Errorf("%w: watch %s: %w", ErrSaveFailed, s.identity, res.err)
	}
	if errors.Is(res.err, ErrStateTooLarge) {
		return fmt.Errorf("%w: watch %s: %w", ErrSaveFailed, s.identity, res.err)
	}
	if failing := now.Sub(s.failingSince); failing >= s.retryTimeout {
		return fmt.Errorf("%w: watch %s: checkpoint %s: no save succeeded for %v (%d attempts): %w; %s; WithSaveRetryTimeout sets how long Run retries",
			ErrSaveFailed, s.identity, s.name, failing.Round(time.Millisecond), s.attempts, res.err, saveFix)
	}
	d := s.bo.Step()
	s.retryAt = now.Add(d)
	s.log.Error(res.err, "saving the checkpoint failed; retrying", "checkpoint", s.name, "attempt", s.attempts, "after", d, "resourceVersion", s.rv)
	return nil
}

// job takes the pending changes for the next save: only those changes when
// the checkpoint takes them and the last save succeeded, else the full state.
func (s *saver) job() saveJob {
	j := saveJob{batch: s.pending, rv: s.rv, full: s.delta == nil || s.needFull}
	s.pending, s.spareBuf, s.needFull = s.spareBuf[:0], nil, false
	if s.pending == nil { // the last batch is still being saved
		s.pending = make([]change, 0, min(s.batch, keepBuf))
	}
	return j
}

// write performs a save: it folds the batch into the known set and writes
// the full state or the batch's changes. It runs in the background, or in
// Run's goroutine when no background save is running.
func (s *saver) write(ctx context.Context, j saveJob) saveResult {
	s.fold(j.batch)
	res := saveResult{batch: j.batch}
	start := time.Now()
	switch {
	case j.full, len(j.batch) > 2*len(s.known)+1024, // a full save is smaller
		s.compact != nil && s.compact.compactDue(): // the known set is what the checkpoint would read back
		res.err = s.cp.Save(ctx, s.snapshot(j.rv))
	default:
		res.err = s.delta.SaveChanges(ctx, s.changes(j))
	}
	if s.metrics != nil && !errors.Is(res.err, context.Canceled) {
		s.metrics(time.Since(start), res.err)
	}
	return res
}
