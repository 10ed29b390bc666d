package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	apiwatch "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	restclientwatch "k8s.io/client-go/rest/watch"
)

// stream runs one watch from the saved position until it ends (nil),
// fails, or ctx is done. Run's goroutine reads the stream itself (see
// decodedStream); while it waits for an event, saveWhileQuiet makes the
// saves that fall due.
func (r *runner[T]) stream(ctx context.Context) error {
	w := r.w
	st, err := w.watch(ctx, metav1.ListOptions{
		LabelSelector:       w.o.labelSelector,
		FieldSelector:       w.o.fieldSelector,
		ResourceVersion:     r.s.position(),
		AllowWatchBookmarks: true,
	})
	if err != nil {
		return r.apiErr("watch", err)
	}
	defer st.close()
	defer context.AfterFunc(ctx, st.close)()
	defer r.saveWhileQuiet(ctx, st)()
	for {
		typ, obj, err := st.next()
		if err != nil { // saveWhileQuiet may have closed the stream
			if serr := r.quietErr(); serr != nil {
				return serr
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return r.apiErr("watch stream", err)
		}
		switch typ {
		case apiwatch.Error:
			return r.apiErr("watch stream", apierrors.FromObject(obj))
		case apiwatch.Bookmark:
			m, err := meta.Accessor(obj)
			if err != nil {
				return fmt.Errorf("watch %s: bookmark: %w: %w", w.identity, errUnexpected, err)
			}
			r.mu.Lock()
			if rv := m.GetResourceVersion(); rv != "" && rv != r.s.position() {
				r.s.moveTo(rv, true)
				// Bookmarks are rare: keep a quiet watch ahead of compaction.
				err = r.s.saveIfDue(ctx, true)
			}
			r.mu.Unlock()
			if err != nil {
				return err
			}
		case apiwatch.Added, apiwatch.Modified, apiwatch.Deleted:
			t, ok := obj.(T)
			if !ok {
				return fmt.Errorf("watch %s: %w: %s event carries %T", w.identity, errUnexpected, typ, obj)
			}
			e := Event[T]{Type: EventType(typ), Object: t}
			k, err := r.handle(ctx, e)
			if err != nil {
				return err
			}
			r.mu.Lock()
			r.handled(e, k)
			r.s.moveTo(t.GetResourceVersion(), false)
			err = r.s.saveIfDue(ctx, false)
			r.mu.Unlock()
			if err != nil {
				return err
			}
		default:
			w.log.Info("ignoring an unknown watch event type", "type", typ)
		}
	}
}

// saveWhileQuiet starts a goroutine that, every checkpoint interval while
// the stream runs, makes the save that is due (handled events waited for
// the interval, a failed save's retry), as an event would. It holds r.mu
// for that, as stream does between events. When saves fail for too long it
// records the error (quietErr) and closes the stream. The returned func
// stops the goroutine and waits for it.
func (r *runner[T]) saveWhileQuiet(ctx context.Context, st eventStream) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.w.o.checkpointInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			r.mu.Lock()
			err := r.s.saveIfDue(ctx, false)
			if err != nil {
				r.saveErr = err
			}
			r.mu.Unlock()
			if err != nil {
				st.close()
				return
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// quietErr returns the error saveWhileQuiet closed the stream with, if it did.
func (r *runner[T]) quietErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.saveErr
}

// eventStream is one open watch stream, read by Run's goroutine.
type eventStream interface {
	// next blocks for the next event; io.EOF when the stream ended
	// (closed by the server, the network or close).
	next() (apiwatch.EventType, runtime.Object, error)
	// close ends the stream; safe to call from any goroutine, more than once.
	close()
}

// decodedStream reads a watch of a built-in type straight from the response
// body, decoding each event in the goroutine that handles it, as client-go's
// StreamWatcher does in a goroutine of its own. That goroutine hands every
// event over an unbuffered channel: a park and a wake-up per event, which on
// a 2-core machine cost as much client CPU as the rest of the Watcher's work
// per event. Reading the body here instead (BenchmarkWatchEvents, same run,
// 2,000 events): kubekit/client-go from 0.86-0.93 to 0.94-1.06, the client
// CPU from 1.32-1.36x the raw watch's to 0.99-1.03x. A protobuf stream (what
// client-go asks for) is then decoded by protoFrames, a JSON one by
// client-go's decoder.
type decodedStream struct {
	body io.ReadCloser
	gvk  schema.GroupVersionKind // what is watched
	// The first next makes one of them: frames for protobuf (see
	// protoFrames), client-go's decoder for JSON.
	frames *protoFrames
	dec    *restclientwatch.Decoder
}

// openStream starts the watch request r for objects of gvk and returns its
// stream. Like client-go's Request.Watch, starting a watch is not rate
// limited.
func openStream(ctx context.Context, r *rest.Request, gvk schema.GroupVersionKind) (eventStream, error) {
	body, err := r.Throttle(nil).Stream(ctx)
	if err != nil {
		return nil, err
	}
	return &decodedStream{body: body, gvk: gvk}, nil
}

func (s *decodedStream) next() (typ apiwatch.EventType, obj runtime.Object, err error) {
	if s.frames == nil && s.dec == nil {
		if err := s.start(); err != nil {
			return "", nil, streamErr(err)
		}
	}
	if s.frames != nil {
		typ, obj, err = s.frames.next()
	} else {
		typ, obj, err = s.dec.Decode()
	}
	if err != nil {
		return "", nil, streamErr(err)
	}
	return typ, obj, nil
}

// start makes the decoder for the stream's encoding. Request.Stream does not
// return the response's Content-Type, so the first byte tells: a JSON watch
// stream starts with '{', a protobuf one with a 4-byte big-endian frame
// length (0x7b there would be a frame of 2 GB).
func (s *decodedStream) start() error {
	var first [1]byte
	if _, err := io.ReadFull(s.body, first[:]); err != nil {
		return err
	}
	mediaType := runtime.ContentTypeProtobuf
	if first[0] == '{' {
		mediaType = runtime.ContentTypeJSON
	}
	objects, events, framer, err := runtime.NewClientNegotiator(scheme.Codecs.WithoutConversion(), s.gvk.GroupVersion()).StreamDecoder(mediaType, nil)
	if err != nil {
		return fmt.Errorf("decoder for %s: %w", mediaType, err)
	}
	body := struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(first[:]), s.body), s.body}
	if mediaType == runtime.ContentTypeProtobuf {
		s.frames = newProtoFrames(body, s.gvk, objects)
		return nil
	}
	s.dec = restclientwatch.NewDecoder(streaming.NewDecoder(framer.NewFrameReader(body), events), objects)
	return nil
}

// close closes the body, which ends a next blocked on it.
func (s *decodedStream) close() { _ = s.body.Close() }

// streamErr maps a read or decode error as client-go's StreamWatcher does:
// an end of the stream (EOF, a cut connection, a timeout) is io.EOF; any
// other error ends the stream too, and is returned.
func streamErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || utilnet.IsProbableEOF(err) || utilnet.IsTimeout(err) {
		return io.EOF
	}
	return fmt.Errorf("unable to decode an event from the watch stream: %w", err)
}

// chanStream is a watch.Interface as an eventStream (the dynamic client's
// watch of unstructured objects).
type chanStream struct{ w apiwatch.Interface }

func (s chanStream) next() (apiwatch.EventType, runtime.Object, error) {
	ev, ok := <-s.w.ResultChan()
	if !ok {
		return "", nil, io.EOF
	}
	return ev.Type, ev.Object, nil
}

func (s chanStream) close() { s.w.Stop() }
