package logging_test

import (
	"flag"
	"io"
	"testing"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubekit/kubekit/logging"
)

// The benchmarks write one structured Info line (or skip a disabled V-level
// one) to io.Discard, so encoding and routing are measured, not a terminal.
// They change klog's global state and restore it.

func benchLogger(b *testing.B) *logging.Logger {
	b.Helper()
	log, err := logging.New(logging.WithOutput(io.Discard), logging.WithVerbosity(2))
	if err != nil {
		b.Fatal(err)
	}
	return log
}

func benchRoute(b *testing.B) {
	b.Helper()
	restore, err := benchLogger(b).RouteKlog()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(restore)
}

func benchLogrZap(b *testing.B) {
	log := benchLogger(b)
	b.ReportAllocs()
	for b.Loop() {
		log.Info("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
	}
}

func benchKlogBridge(b *testing.B) {
	benchRoute(b)
	b.ReportAllocs()
	for b.Loop() {
		klog.InfoS("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
	}
}

func benchKlogText(b *testing.B) {
	state := klog.CaptureState()
	b.Cleanup(state.Restore)
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for _, kv := range [][2]string{{"logtostderr", "false"}, {"alsologtostderr", "false"}, {"v", "2"}} {
		if err := fs.Set(kv[0], kv[1]); err != nil {
			b.Fatal(err)
		}
	}
	klog.ClearLogger()
	klog.SetOutput(io.Discard)
	b.ReportAllocs()
	for b.Loop() {
		klog.InfoS("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
	}
}

// BenchmarkInfo: logr on zap directly, klog.InfoS routed through RouteKlog
// into the same zap core, and klog's own text format.
func BenchmarkInfo(b *testing.B) {
	b.Run("logr-zap", benchLogrZap)
	b.Run("klog-bridge", benchKlogBridge)
	b.Run("klog-text", benchKlogText)
}

// BenchmarkBridgeRatio alternates batches of logr-on-zap and klog-bridge
// calls into the same Logger and reports the bridge's time relative to
// logr-on-zap (target <= 1.5), so both see the same machine load.
func BenchmarkBridgeRatio(b *testing.B) {
	log := benchLogger(b)
	restore, err := log.RouteKlog()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(restore)
	const batch = 100
	var direct, bridge time.Duration
	for b.Loop() {
		start := time.Now()
		for range batch {
			log.Info("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
		}
		mid := time.Now()
		for range batch {
			klog.InfoS("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
		}
		direct += mid.Sub(start)
		bridge += time.Since(mid)
	}
	b.ReportMetric(float64(bridge)/float64(direct), "bridge/logr")
	b.ReportMetric(float64(direct.Nanoseconds())/float64(b.N*batch), "logr-ns/line")
	b.ReportMetric(float64(bridge.Nanoseconds())/float64(b.N*batch), "bridge-ns/line")
	b.ReportMetric(0, "ns/op") // an op is a batch pair; the per-line figures above are what matter
}

// BenchmarkDisabledV measures V-level calls above the verbosity (V(5) at
// verbosity 2). Guarded means `if v := log.V(5); v.Enabled() {...}`, the
// idiom for hot paths: the unguarded call with key/value pairs allocates
// the variadic slice, because it escapes through the logr.LogSink interface
// before the level check.
func BenchmarkDisabledV(b *testing.B) {
	b.Run("logr-guarded", func(b *testing.B) {
		log := benchLogger(b)
		b.ReportAllocs()
		for b.Loop() {
			if v := log.V(5); v.Enabled() {
				v.Info("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
			}
		}
	})
	b.Run("logr-no-values", func(b *testing.B) {
		log := benchLogger(b)
		b.ReportAllocs()
		for b.Loop() {
			log.V(5).Info("Received HTTP request")
		}
	})
	b.Run("logr-with-values", func(b *testing.B) {
		log := benchLogger(b)
		b.ReportAllocs()
		for b.Loop() {
			log.V(5).Info("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
		}
	})
	b.Run("klog-bridge-guarded", func(b *testing.B) {
		benchRoute(b)
		b.ReportAllocs()
		for b.Loop() {
			if v := klog.V(5); v.Enabled() {
				v.InfoS("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
			}
		}
	})
	b.Run("klog-bridge-with-values", func(b *testing.B) {
		benchRoute(b)
		b.ReportAllocs()
		for b.Loop() {
			klog.V(5).InfoS("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
		}
	})
	b.Run("klog-text-guarded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if v := klog.V(5); v.Enabled() {
				v.InfoS("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
			}
		}
	})
}
