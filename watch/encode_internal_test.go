package watch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// The checkpoint's encoders write what json.Marshal writes, byte for byte,
// for any strings: escapes, HTML characters, invalid UTF-8, U+2028, empty
// namespaces (omitted) and nil lists (null) included; finishLine makes of
// it the log line the format describes, "<crc32, 8 hex digits> <JSON>\n".
func FuzzCheckpointEncoding(f *testing.F) {
	f.Add("123", "default", "cm-1", "0b5d3a36-6a9d-4d7c-9b4a-2f0f8a1c2d3e", "456", true)
	f.Add("1", "", "node-a", "u", "2", false)
	f.Add("<&>", "ns\"q", "back\\slash", "tab\tnl\n", "\u2028\u2029\x7f", true)
	f.Add("\xff\xfe", "é", "\x00", "日本", "", false)
	f.Fuzz(func(t *testing.T, rv, ns, name, uid, objRV string, withDeleted bool) {
		objs := []ObjectRef{
			{Namespace: ns, Name: name, UID: types.UID(uid), ResourceVersion: objRV},
			{Name: name + ns},
		}
		r := logRecord{ResourceVersion: rv, Upserted: objs}
		e := encoded{Version: len(rv) - 3, Resource: ns + " " + uid, ResourceVersion: rv}
		if withDeleted {
			r.Deleted = []ObjectRef{{Namespace: ns, Name: name}}
			e.Objects = objs
		}
		for _, tc := range []struct {
			v      any
			append func([]byte) []byte
		}{
			{r, func(b []byte) []byte { return appendLogRecord(b, r) }},
			{e, func(b []byte) []byte { return appendEncoded(b, e) }},
		} {
			want, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.append([]byte("prefix")); !bytes.Equal(got, append([]byte("prefix"), want...)) {
				t.Fatalf("%T: appended\n%s\njson.Marshal\n%s", tc.v, got[6:], want)
			}
			if got, want := finishLine(tc.append(make([]byte, lineHead))), fmt.Appendf(nil, "%08x %s\n", crc32.ChecksumIEEE(want), want); !bytes.Equal(got, want) {
				t.Fatalf("%T: finishLine =\n%q\nwant\n%q", tc.v, got, want)
			}
		}
	})
}

// BenchmarkCheckpointEncoding encodes one save's log record of 1,000
// changes with appendLogRecord and with json.Marshal, alternately in the
// same run, and reports how many times faster appendLogRecord is.
func BenchmarkCheckpointEncoding(b *testing.B) {
	r := logRecord{ResourceVersion: "123456", Deleted: []ObjectRef{}}
	for i := range 1000 {
		r.Upserted = append(r.Upserted, ObjectRef{Namespace: "default", Name: fmt.Sprintf("cm-%d", i), UID: "0b5d3a36-6a9d-4d7c-9b4a-2f0f8a1c2d3e", ResourceVersion: "123456"})
	}
	var buf []byte
	var appendT, marshalT time.Duration
	for b.Loop() {
		start := time.Now()
		buf = appendLogRecord(buf[:0], r)
		appendT += time.Since(start)
		start = time.Now()
		if _, err := json.Marshal(r); err != nil {
			b.Fatal(err)
		}
		marshalT += time.Since(start)
	}
	b.ReportMetric(float64(appendT.Microseconds())/float64(b.N), "append-us")
	b.ReportMetric(float64(marshalT.Microseconds())/float64(b.N), "json.Marshal-us")
	b.ReportMetric(marshalT.Seconds()/appendT.Seconds(), "append-vs-json.Marshal")
}
