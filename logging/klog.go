package logging

import (
	"flag"
	"fmt"
	"strconv"

	"k8s.io/klog/v2"
)

// RouteKlog makes klog, and with it client-go and every other Kubernetes
// library, log through l: klog's global logger is set to l.Logger, klog's
// verbosity is set to l's (so klog.V(n) and l.V(n) agree: one knob), and
// contextual logging is enabled so that klog.FromContext(ctx) returns l (or
// the logger a caller stored with klog.NewContext). klog's own output (its
// text format, files, flags) is no longer used.
//
// klog's settings are global. Call RouteKlog during start-up, before other
// goroutines log, and call the returned restore function (typically
// deferred) after they stopped: it puts back every klog setting as it was
// before, including its logger and verbosity. restore may be called more
// than once. RouteKlog does not touch flag.CommandLine: klog's verbosity is
// set through a private flag set.
func (l *Logger) RouteKlog() (restore func(), err error) {
	if l == nil || l.zap == nil {
		return nil, errNotNew
	}
	state := klog.CaptureState()
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	if err := fs.Set("v", strconv.Itoa(l.verbosity)); err != nil {
		state.Restore()
		return nil, fmt.Errorf("logging: set klog verbosity: %w", err)
	}
	// ContextualLogger(true): klog.Background/TODO/FromContext hand out l
	// itself. That is safe because l checks the same verbosity as klog.
	klog.SetLoggerWithOptions(l.Logger, klog.ContextualLogger(true), klog.FlushLogger(func() { _ = l.Sync() }))
	klog.EnableContextualLogging(true)
	return state.Restore, nil
}
