// Package watch is a resumable watch of one Kubernetes resource that loses
// nothing across disconnects, API server restarts, process restarts and
// 410 Gone.
//
// # Overview
//
// A [Watcher] watches one resource type, in one namespace or all, with
// optional label and field selectors, and calls a handler for every change:
//
//	w, err := watch.New[*corev1.ConfigMap](ctx, c, watch.WithNamespace("default"),
//		watch.WithCheckpoint(cp))
//	err = w.Run(ctx, func(ctx context.Context, e watch.Event[*corev1.ConfigMap]) error {
//		fmt.Println(e.Type, e.Object.Name)
//		return nil
//	})
//
// [New] takes a built-in type of client-go's scheme; [NewForResource] takes
// any resource, custom resources included, and delivers
// *unstructured.Unstructured. Both ask the API server's discovery which
// resource to watch, bounded by their ctx; a server that cannot be reached
// is reported as such, a kind it does not serve as "not served".
//
// On start, Run loads the checkpoint. With a saved position it watches from
// there (the resourceVersion goes into the watch call). Without one it lists
// (paginated) and watches from the list's resourceVersion, delivering the
// listed objects as ADDED events with Initial set ([WithInitialEvents]).
//
// client-go's RetryWatcher needs a starting resourceVersion, hides its
// position, retries a 410 at open forever and gives up on one in the
// stream; a plain re-watch loses events. Watcher fixes each of these.
//
// # Options
//
// Options are validated together in New; errors name the option to fix.
// Scope: [WithNamespace], [WithLabelSelector], [WithFieldSelector].
// Position: [WithCheckpoint], [WithCheckpointBatch], [WithResetBadCheckpoint],
// [WithInitialEvents]. Resilience: [WithBackoff], [WithHealthyPeriod],
// [WithGapRecovery], [WithHandlerRetries], [WithHandlerBackoff]. Other:
// [WithSaveRetryTimeout], [WithPageSize], [WithLogger] (default
// klog.Background(), which logging.RouteKlog captures).
//
// # Checkpoints
//
// A [Checkpoint] stores the resourceVersion up to which every event was
// handled, plus the compact set of known objects (namespace, name, UID,
// resourceVersion) that gap recovery needs, so recovery also works after a
// process restart. There are three: [MemoryCheckpoint] (the default; only a
// second Run of the same Watcher resumes), [FileCheckpoint] (a full state
// replaced atomically: temporary file, fsync, rename, fsync of the
// directory; plus a log of the changes since, appended and fsync'd) and
// [ConfigMapCheckpoint] (for stateless Pods: gzip-compressed, spread over
// shard ConfigMaps committed atomically through a head ConfigMap past
// 1 MiB, and fenced by optimistic concurrency). The format is versioned
// JSON ([EncodeState], [DecodeState]).
//
// The position is saved only after the handler returned nil for an event
// (at-least-once delivery), in batches ([WithCheckpointBatch]: every 1,000
// events or 1s by default), on every bookmark and always when Run returns. After a
// crash the events not saved yet are delivered again: the last batch, or
// more when events came faster than saves (a save that is running holds
// the next batch back until it is done); after a clean stop, nothing is. Saves run in the background, one at a time, and so
// does the bookkeeping of the known objects, so delivery does not wait for
// them (unless 65,536 handled events pile up behind one slow save). A full
// save writes the whole known set (about 100 bytes per object, roughly 1 MB
// for 10,000 objects); a [DeltaCheckpoint] such as [FileCheckpoint] then
// takes only the objects changed since the last save, until its log
// outgrows the full state, which it then folds into a new one by itself.
// [MemoryCheckpoint] and [ConfigMapCheckpoint] save in full every time.
// Measured against the real API server with realistic names (30-character
// names, 15-character namespaces, 8-digit resourceVersions, random UIDs), a
// ConfigMap checkpoint takes about 35 bytes per object: 10,000 objects fit
// one ConfigMap (save about 60ms, load about 40ms), 100,000 take a head and
// four shards (save about 0.9s, load about 0.5s).
//
// A failed save is logged ("saving the checkpoint failed; retrying", with
// the checkpoint's name) and retried, in full, after the [WithBackoff]
// delays; delivery goes on meanwhile. When no save succeeded for
// [WithSaveRetryTimeout] (2 minutes by default), Run stops with an error
// matching [ErrSaveFailed] that names the checkpoint and the fix. A state
// its store cannot hold ([ErrStateTooLarge]: a ConfigMap checkpoint holds
// [WithMaxShards] MiB compressed, about a million objects by default) stops
// Run at once, naming the size, the object count and the fix.
//
// # Two replicas
//
// Run the watch inside leader.Run (package leader) with one
// [ConfigMapCheckpoint] for all replicas: only the leader watches, and a
// new leader resumes from the position the last one saved, replaying what
// the last one had not saved (its last batch, see above). Give each
// replica its own writer identity ([WithWriterIdentity], e.g. the leader
// election identity). Leader
// election alone cannot stop a leader that was paused past its Lease from
// writing in the instant it wakes up (leader.Run cancels fn then); the
// checkpoint's fence makes sure such a write is refused: its save
// conflicts ([ErrCheckpointConflict]) and Run stops without overwriting
// the new leader's position. examples/watch (--leader-elect,
// --checkpoint-configmap) is the complete program; it checks
// leader.Leading before each print and save, so a woken leader prints
// nothing once its Lease may be another replica's.
//
// # Lifecycle
//
// Run blocks until ctx is cancelled (it then saves and returns nil, also
// when ctx was done before Run started) or a fatal error. A stream that ends or fails is reopened from the last
// position after a jittered exponential backoff ([WithBackoff]), which
// starts over once a stream stayed up for [WithHealthyPeriod]. Watches
// always request bookmarks, which move the position (and the checkpoint)
// even when no event matches the selectors, so a quiet filtered watch does
// not fall behind etcd compaction.
//
// When the position is gone (410 Gone at open or in the stream, after
// compaction or an API server restart), Run re-lists and delivers what the
// gap hid, each event with Synthetic set: ADDED for new objects, MODIFIED
// for changed ones, DELETED (with a metadata-only tombstone) for objects
// that vanished.
// [WithGapRecovery](false) makes Run fail instead. Note that a restarted API
// server answers every position older than its fresh watch cache with 410,
// so expect a (usually empty or small) synthetic batch after each restart.
//
// # Ordering and concurrency
//
// The handler is called from Run's goroutine, one event at a time. Per
// object, events arrive in resourceVersion order. A handler error retries
// the same event with backoff ([WithHandlerRetries], [WithHandlerBackoff]);
// the checkpoint never moves past it. A panicking handler is recovered,
// logged with its stack and retried the same way; its error wraps
// [ErrHandlerPanic]. A Watcher runs one Run at a time.
//
// For a built-in type, Run's goroutine also reads and decodes the watch
// stream (protobuf, or JSON if the server answers so): no goroutine hands
// each event over a channel, as client-go's Request.Watch does. Saves run
// in a goroutine of their own, one at a time; while the stream is quiet or
// the handler busy, handled events are still saved after the checkpoint
// interval ([WithCheckpointBatch]).
//
// # Errors
//
// Run ends with an error, instead of retrying forever, on: 401/403 and other
// errors retrying cannot fix (apierrors.IsForbidden & co. work on it); a
// handler that keeps failing or panicking ([*HandlerError]); checkpoint
// saves that keep failing ([ErrSaveFailed]); a corrupt or unreadable
// checkpoint ([ErrBadCheckpoint], or by [WithResetBadCheckpoint] a fresh
// list with synthetic events, never a silent start from "now"); a
// checkpoint of another watch ([ErrCheckpointMismatch]); a ConfigMap
// checkpoint another writer saved to since this Run read it
// ([ErrCheckpointConflict], which also matches [ErrSaveFailed]: the Run
// writes nothing more); with gap recovery off, 410 Gone ([ErrExpired]).
//
// The Watcher uses the client's configuration and connection pool, but not
// its whole-request timeout (client.WithTimeout), which would cut every
// watch stream.
package watch
