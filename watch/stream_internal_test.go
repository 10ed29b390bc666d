package watch

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	apiwatch "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	restclientwatch "k8s.io/client-go/rest/watch"
)

// watchBody encodes events as the API server writes a watch response in
// mediaType: framed WatchEvents, each with its object encoded inside.
func watchBody(t testing.TB, mediaType string, events ...apiwatch.Event) []byte {
	t.Helper()
	info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), mediaType)
	if !ok || info.StreamSerializer == nil {
		t.Fatalf("no stream serializer for %s", mediaType)
	}
	objects := scheme.Codecs.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion)
	var body bytes.Buffer
	fw := info.StreamSerializer.Framer.NewFrameWriter(&body)
	for _, e := range events {
		raw, err := runtime.Encode(objects, e.Object)
		if err != nil {
			t.Fatal(err)
		}
		if err := info.StreamSerializer.Encode(&metav1.WatchEvent{Type: string(e.Type), Object: runtime.RawExtension{Raw: raw}}, fw); err != nil {
			t.Fatal(err)
		}
	}
	return body.Bytes()
}

// A decodedStream reads both encodings the API server may answer a watch
// in, tells them apart by the first byte, and ends with io.EOF.
func TestDecodedStreamEncodings(t *testing.T) {
	for _, mediaType := range []string{runtime.ContentTypeProtobuf, runtime.ContentTypeJSON} {
		t.Run(mediaType, func(t *testing.T) {
			body := watchBody(t, mediaType,
				apiwatch.Event{Type: apiwatch.Added, Object: fakeCM("a", "ua", "11")},
				apiwatch.Event{Type: apiwatch.Deleted, Object: fakeCM("b", "ub", "12")},
				apiwatch.Event{Type: apiwatch.Bookmark, Object: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "13"}}},
			)
			s := &decodedStream{body: io.NopCloser(bytes.NewReader(body)), gvk: cmGVK}
			defer s.close()
			want := []struct {
				typ  apiwatch.EventType
				name string
				rv   string
			}{{apiwatch.Added, "a", "11"}, {apiwatch.Deleted, "b", "12"}, {apiwatch.Bookmark, "", "13"}}
			for i, w := range want {
				typ, obj, err := s.next()
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				cm, ok := obj.(*corev1.ConfigMap)
				if !ok || typ != w.typ || cm.Name != w.name || cm.ResourceVersion != w.rv {
					t.Fatalf("event %d = %s %T %+v, want %s of ConfigMap %q at %s", i, typ, obj, obj, w.typ, w.name, w.rv)
				}
			}
			if _, _, err := s.next(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the last event: %v, want io.EOF", err)
			}
		})
	}
}

// A stream cut inside an event ends like a closed one (io.EOF: Run
// reconnects from the last handled event); bytes that are no watch event
// are an error; an empty body is a stream that ended.
func TestDecodedStreamErrors(t *testing.T) {
	full := watchBody(t, runtime.ContentTypeProtobuf, apiwatch.Event{Type: apiwatch.Added, Object: fakeCM("a", "ua", "11")})
	for _, tc := range []struct {
		name string
		body []byte
		eof  bool
	}{
		{"cut", full[:len(full)-3], true},
		{"empty", nil, true},
		{"garbage", []byte("\x00\x00\x00\x05hello"), false},
		{"bad JSON", []byte(`{"type":"ADDED","object":nope}`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &decodedStream{body: io.NopCloser(bytes.NewReader(tc.body)), gvk: cmGVK}
			_, obj, err := s.next()
			if tc.eof != errors.Is(err, io.EOF) || err == nil {
				t.Fatalf("next = %v, %v; want io.EOF: %v", obj, err, tc.eof)
			}
		})
	}
}

var cmGVK = corev1.SchemeGroupVersion.WithKind("ConfigMap")

// clientGoEvents decodes body as client-go's decoder does (the decoder
// decodedStream used for every stream before protoFrames), up to the first
// error.
func clientGoEvents(t testing.TB, body []byte, gvk schema.GroupVersionKind) ([]apiwatch.Event, error) {
	t.Helper()
	objects, events, framer, err := runtime.NewClientNegotiator(scheme.Codecs.WithoutConversion(), gvk.GroupVersion()).StreamDecoder(runtime.ContentTypeProtobuf, nil)
	if err != nil {
		t.Fatal(err)
	}
	return drain(restclientwatch.NewDecoder(streaming.NewDecoder(framer.NewFrameReader(io.NopCloser(bytes.NewReader(body))), events), objects).Decode)
}

// frameEvents decodes body with protoFrames, up to the first error.
func frameEvents(body []byte, gvk schema.GroupVersionKind) ([]apiwatch.Event, error) {
	objects, _, _, _ := runtime.NewClientNegotiator(scheme.Codecs.WithoutConversion(), gvk.GroupVersion()).StreamDecoder(runtime.ContentTypeProtobuf, nil)
	return drain(newProtoFrames(bytes.NewReader(body), gvk, objects).next)
}

// drain returns the events next decodes, up to its first error.
func drain(next func() (apiwatch.EventType, runtime.Object, error)) ([]apiwatch.Event, error) {
	var got []apiwatch.Event
	for {
		typ, obj, err := next()
		if err != nil {
			return got, err
		}
		got = append(got, apiwatch.Event{Type: typ, Object: obj})
	}
}

// sameEvents fails t unless protoFrames decodes body to the events
// client-go's decoder does, and both end (an end of the stream for both,
// or an error for both).
func sameEvents(t testing.TB, body []byte, gvk schema.GroupVersionKind) []apiwatch.Event {
	t.Helper()
	want, werr := clientGoEvents(t, body, gvk)
	got, gerr := frameEvents(body, gvk)
	if !apiequality.Semantic.DeepEqual(got, want) {
		t.Fatalf("protoFrames decoded %d events:\n%#v\nclient-go %d:\n%#v", len(got), got, len(want), want)
	}
	if wEOF, gEOF := errors.Is(streamErr(werr), io.EOF), errors.Is(streamErr(gerr), io.EOF); wEOF != gEOF {
		t.Fatalf("protoFrames ended with %v, client-go with %v", gerr, werr)
	}
	return got
}

// protoFrames decodes what client-go's decoder decodes, to equal objects,
// for objects of the watched kind (its own path) and anything else (an
// ERROR event's Status, another kind: client-go's decoder), reusing its
// memory from event to event without the events sharing any of it.
func TestProtoFramesMatchClientGo(t *testing.T) {
	rich := fakeCM("a", "ua", "11")
	rich.Labels = map[string]string{"app": "x"}
	rich.BinaryData = map[string][]byte{"bin": {0, 1, 2}}
	rich.Data = map[string]string{"k": strings.Repeat("v", 5000)} // a frame larger than the ones before
	rich.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "m", Operation: metav1.ManagedFieldsOperationApply, FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:data":{}}`)}}
	events := []apiwatch.Event{
		{Type: apiwatch.Added, Object: fakeCM("small", "u0", "10")},
		{Type: apiwatch.Modified, Object: rich},
		{Type: apiwatch.Deleted, Object: fakeCM("b", "ub", "12")},
		{Type: apiwatch.Bookmark, Object: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "13"}}},
		{Type: apiwatch.Added, Object: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", ResourceVersion: "14"}, Data: map[string][]byte{"x": []byte("y")}}},
		{Type: apiwatch.Error, Object: &metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old resource version"}},
	}
	got := sameEvents(t, watchBody(t, runtime.ContentTypeProtobuf, events...), cmGVK)
	if len(got) != len(events) {
		t.Fatalf("%d events decoded, want %d", len(got), len(events))
	}
	for i, e := range events {
		if got[i].Type != e.Type || reflect.TypeOf(got[i].Object) != reflect.TypeOf(e.Object) {
			t.Fatalf("event %d = %s %T, want %s %T", i, got[i].Type, got[i].Object, e.Type, e.Object)
		}
	}
	if cm := got[1].Object.(*corev1.ConfigMap); len(cm.Data["k"]) != 5000 || cm.BinaryData["bin"][2] != 2 || got[0].Object.(*corev1.ConfigMap).Name != "small" {
		t.Fatalf("a later frame changed an earlier event's object: %+v", got[:2])
	}
	// Another built-in kind, in another group.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", ResourceVersion: "5"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i", Args: []string{"a", "b"}}}}}
	sameEvents(t, watchBody(t, runtime.ContentTypeProtobuf, apiwatch.Event{Type: apiwatch.Added, Object: pod}), corev1.SchemeGroupVersion.WithKind("Pod"))
}

// FuzzProtoFrames: for any body, protoFrames decodes what client-go's
// decoder does and ends as it does (an end of the stream or an error).
func FuzzProtoFrames(f *testing.F) {
	f.Add(watchBody(f, runtime.ContentTypeProtobuf,
		apiwatch.Event{Type: apiwatch.Added, Object: fakeCM("a", "ua", "11")},
		apiwatch.Event{Type: apiwatch.Error, Object: &metav1.Status{Status: metav1.StatusFailure, Code: 410}}))
	f.Add(watchBody(f, runtime.ContentTypeProtobuf, apiwatch.Event{Type: apiwatch.Added, Object: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}}))
	f.Add([]byte("\x00\x00\x00\x05hello"))
	f.Add([]byte("\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, body []byte) {
		sameEvents(t, body, cmGVK)
	})
}
