package logging_test

import (
	"errors"
	"flag"
	"io"
	"testing"

	"k8s.io/klog/v2"

	"github.com/kubekit/kubekit/logging"
)

// BenchmarkLog compares, in one run, one structured Info line written by
// logr on zap directly, by klog.InfoS routed through RouteKlog, and by
// klog's own text format (to io.Discard), plus V-level calls that are
// switched off. All loggers write to io.Discard so the encoding is measured,
// not the terminal.
func BenchmarkLog(b *testing.B) {
	newLogger := func(b *testing.B) *logging.Logger {
		b.Helper()
		log, err := logging.New(logging.WithOutput(io.Discard), logging.WithVerbosity(2))
		if err != nil {
			b.Fatal(err)
		}
		return log
	}
	err := errors.New("boom")
	_ = err

	b.Run("logr-zap", func(b *testing.B) {
		log := newLogger(b)
		b.ReportAllocs()
		for b.Loop() {
			log.Info("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
		}
	})
	b.Run("klog-bridge", func(b *testing.B) {
		log := newLogger(b)
		restore, err := log.RouteKlog()
		if err != nil {
			b.Fatal(err)
		}
		defer restore()
		b.ReportAllocs()
		for b.Loop() {
			klog.InfoS("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
		}
	})
	b.Run("klog-text", func(b *testing.B) {
		state := klog.CaptureState()
		defer state.Restore()
		fs := flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(fs)
		for k, v := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "v": "2"} {
			if err := fs.Set(k, v); err != nil {
				b.Fatal(err)
			}
		}
		klog.ClearLogger()
		klog.SetOutput(io.Discard)
		b.ReportAllocs()
		for b.Loop() {
			klog.InfoS("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
		}
	})
	b.Run("logr-disabled-V", func(b *testing.B) {
		log := newLogger(b)
		b.ReportAllocs()
		for b.Loop() {
			log.V(5).Info("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
		}
	})
	b.Run("logr-disabled-V-guarded", func(b *testing.B) {
		log := newLogger(b)
		b.ReportAllocs()
		for b.Loop() {
			if v := log.V(5); v.Enabled() {
				v.Info("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
			}
		}
	})
	b.Run("logr-disabled-V-no-values", func(b *testing.B) {
		log := newLogger(b)
		b.ReportAllocs()
		for b.Loop() {
			log.V(5).Info("Received HTTP request")
		}
	})
	b.Run("klog-disabled-V-guarded", func(b *testing.B) {
		log := newLogger(b)
		restore, err := log.RouteKlog()
		if err != nil {
			b.Fatal(err)
		}
		defer restore()
		b.ReportAllocs()
		for b.Loop() {
			if v := klog.V(5); v.Enabled() {
				v.InfoS("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
			}
		}
	})
	b.Run("klog-disabled-V", func(b *testing.B) {
		log := newLogger(b)
		restore, err := log.RouteKlog()
		if err != nil {
			b.Fatal(err)
		}
		defer restore()
		b.ReportAllocs()
		for b.Loop() {
			klog.V(5).InfoS("Received HTTP request", "method", "GET", "url", "/metrics", "status", 200)
		}
	})
}
