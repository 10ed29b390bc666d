package watch

import (
	"bytes"
	"errors"
	"io"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	apiwatch "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
)

// watchBody encodes events as the API server writes a watch response in
// mediaType: framed WatchEvents, each with its object encoded inside.
func watchBody(t *testing.T, mediaType string, events ...apiwatch.Event) []byte {
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
			s := &decodedStream{body: io.NopCloser(bytes.NewReader(body)), gv: corev1.SchemeGroupVersion}
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
			s := &decodedStream{body: io.NopCloser(bytes.NewReader(tc.body)), gv: corev1.SchemeGroupVersion}
			_, obj, err := s.next()
			if tc.eof != errors.Is(err, io.EOF) || err == nil {
				t.Fatalf("next = %v, %v; want io.EOF: %v", obj, err, tc.eof)
			}
		})
	}
}
