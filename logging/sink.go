package logging

import (
	"fmt"
	"sync/atomic"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
)

// levelSink puts the verbosity check in front of zapr's sink. zapr's
// Enabled goes through three interface calls (zap's core and level
// enabler); a disabled V-level is the hot path of every program that logs
// at V(4) in loops, so it gets one integer compare instead. zap's core is
// built at level -v, so level <= v is exactly what zap would decide.
//
// levelSink adds one stack frame between logr and zapr. zapr's sink comes
// from zapr.NewLoggerWithOptions, whose logr.New already told it to skip
// logr's frame; logr.New(levelSink) calls Init again with depth 1, which
// levelSink passes on to skip its own frame. So callers still point at the
// code that logged (the tests check direct, klog and client-go callers).
//
// klog calls WithCallDepth on its global logger for every line, and zapr
// answers by cloning its zap.Logger. The root sink (the one New builds and
// RouteKlog gives klog) caches the sinks for small depths, so the bridge
// does not allocate a logger per line.
type levelSink struct {
	sink   logr.LogSink // zapr's
	v      int
	depths *[maxCachedDepth]atomic.Pointer[levelSink] // nil except on the root sink
}

const maxCachedDepth = 8

func newLevelSink(sink logr.LogSink, v int) *levelSink {
	return &levelSink{sink: sink, v: v, depths: new([maxCachedDepth]atomic.Pointer[levelSink])}
}

var (
	_ logr.LogSink          = (*levelSink)(nil)
	_ logr.CallDepthLogSink = (*levelSink)(nil)
	_ zapr.Underlier        = (*levelSink)(nil)
)

// Init passes the depth on: see the type's comment.
func (s *levelSink) Init(ri logr.RuntimeInfo) { s.sink.Init(ri) }

func (s *levelSink) Enabled(level int) bool { return level <= s.v }

func (s *levelSink) Info(level int, msg string, keysAndValues ...any) {
	s.sink.Info(level, msg, fixKV(keysAndValues)...)
}

func (s *levelSink) Error(err error, msg string, keysAndValues ...any) {
	s.sink.Error(err, msg, fixKV(keysAndValues)...)
}

func (s *levelSink) WithValues(keysAndValues ...any) logr.LogSink {
	return &levelSink{sink: s.sink.WithValues(fixKV(keysAndValues)...), v: s.v}
}

// missingValue stands for the value of a trailing key without one, as in
// klog's text output.
const missingValue = "(MISSING)"

// fixKV repairs what zapr would turn into a separate DPANIC line with a
// stack trace (and then drop the remaining pairs): an odd number of
// arguments gets missingValue for the last key, and a key that is not a
// string is printed with %v. Well-formed pairs, the common case, are
// returned as they are, without allocating.
func fixKV(kv []any) []any {
	ok := len(kv)%2 == 0
	for i := 0; ok && i < len(kv); i += 2 {
		_, ok = kv[i].(string)
	}
	if ok {
		return kv
	}
	out := make([]any, 0, len(kv)+1)
	for i := 0; i < len(kv); i += 2 {
		key, isString := kv[i].(string)
		if !isString {
			key = fmt.Sprintf("%v", kv[i])
		}
		var v any = missingValue
		if i+1 < len(kv) {
			v = kv[i+1]
		}
		out = append(out, key, v)
	}
	return out
}

func (s *levelSink) WithName(name string) logr.LogSink {
	return &levelSink{sink: s.sink.WithName(name), v: s.v}
}

func (s *levelSink) WithCallDepth(depth int) logr.LogSink {
	if s.depths != nil && depth >= 0 && depth < maxCachedDepth {
		if d := s.depths[depth].Load(); d != nil {
			return d
		}
		d := &levelSink{sink: s.sink.(logr.CallDepthLogSink).WithCallDepth(depth), v: s.v}
		s.depths[depth].Store(d) // a race stores an equivalent sink: harmless
		return d
	}
	return &levelSink{sink: s.sink.(logr.CallDepthLogSink).WithCallDepth(depth), v: s.v}
}

// GetUnderlying returns the zap logger, as zapr's sink does.
func (s *levelSink) GetUnderlying() *zap.Logger { return s.sink.(zapr.Underlier).GetUnderlying() }
