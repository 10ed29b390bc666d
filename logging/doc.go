// Package logging gives a program one zap-backed [logr.Logger] for its own
// logs and for the klog output of client-go and the other Kubernetes
// libraries, with one verbosity knob and flags that do not pollute --help.
//
// # Overview
//
// klog and zap count levels in opposite directions. klog writes V(n) when
// n <= its -v flag; zapr hands V(n) to zap as level -n, which zap writes when it is
// >= zap's level. Setting only klog's -v to 10 therefore shows nothing new:
// zap, still at info, drops level -4. [New] takes one verbosity v and sets
// zap's level to -v; [Logger.RouteKlog] sets klog's -v to the same v. Then a
// line shows exactly when its V-level is <= v, whichever API wrote it.
//
//	var lf logging.Flags
//	lf.BindPFlags(cmd.Flags()) // -v/--v, --log-format, --log-file
//	...                        // parse
//	log, err := logging.New(logging.WithFlags(&lf))
//	if err != nil {
//		return err
//	}
//	defer log.Close()
//	restore, err := log.RouteKlog() // client-go now logs through log
//	if err != nil {
//		return err
//	}
//	defer restore()
//	c, err := client.New(client.WithLogger(log.Logger))
//
// Lines print as INFO or ERROR: V-levels are INFO with a "v" field holding
// the level ({"level":"INFO","v":6,...}); errors carry the error as "err"
// and, by default, a stack trace. Info lines never carry stack traces.
// Malformed key/value pairs do not change that: zapr on its own writes a
// separate DPANIC line with a stack trace for an odd number of arguments or
// a non-string key and drops the rest of the pairs; this Logger repairs them
// instead, as klog's text format does: a key without a value gets
// "(MISSING)", a non-string key is printed with %v, and every pair is kept.
//
// # Options
//
// Defaults: JSON to os.Stderr, verbosity 0, time stamps in
// [DefaultTimeLayout], caller (file:line) and error stack traces on, no file.
// [WithVerbosity], [WithFormat] ("json" or "console"), [WithOutput],
// [WithFile], [WithTimeLayout], [WithCaller], [WithStacktraces] change them;
// [WithFlags] takes verbosity, format and file from a parsed [Flags]
// instead. Options are validated together, so their order never matters.
//
// # Flags
//
// [Flags.BindFlags] (standard flag package) and [Flags.BindPFlags] (pflag,
// cobra) add -v, --log-format and --log-file to a flag set the caller
// passes. Nothing is registered on import, and klog's own flags (log_dir,
// vmodule, logtostderr...) are never added anywhere: RouteKlog sets klog's
// verbosity through a private flag set, not flag.CommandLine.
//
// # Client-go and klog
//
// [Logger.RouteKlog] sets klog's global logger and verbosity and returns a
// function that restores every klog setting. It also enables contextual
// logging with the Logger as klog's fallback, so:
//
//   - klog.InfoS, klog.V(n).InfoS, klog.ErrorS, klog.Infof... all come out
//     through zap, with the caller's file:line;
//   - klog.FromContext(ctx), klog.Background() and klog.TODO() return the
//     Logger, and a logger stored with klog.NewContext(ctx, log.WithValues(...))
//     reaches client-go code that logs with klog.FromContext(req.Context()),
//     such as its HTTP round tripper, so request lines carry its values.
//
// client-go decides when a transport is built whether to wrap it with its
// debugging round tripper (klog.V(6) enabled), so route klog before creating
// clients. What client-go logs, by verbosity: 6 each request's verb, URL,
// status and duration ("Response" lines), 7 request headers, 8 request and
// response bodies, 9 curl commands and response headers. Authorization
// headers are always masked ("Bearer <masked>"), but bodies at 8 and above
// are not: a Secret or TokenRequest response is logged as it is. Do not run
// production at v >= 8.
//
// # Lifecycle
//
// A Logger is safe for concurrent use; writes to the output and the file
// are serialised. [Logger.Sync] flushes, [Logger.Close] syncs and closes the
// log file (call it last; it may be called more than once). klog's state is
// global: call RouteKlog during start-up, before other goroutines log, and
// restore after they stopped. Tests that route klog must not run in
// parallel with each other.
//
// # Errors
//
// [New] fails with an error naming the fix for an unknown format (an empty
// one means json, in [WithFormat] as in [Flags]), a time layout without a
// time element ([WithTimeLayout]("garbage")), a verbosity outside
// 0..[MaxVerbosity], a file that cannot be opened (missing
// directory, no permission, a directory), a nil output, or [WithFlags]
// combined with the options it replaces. The flag values reject bad input
// while parsing, so "-v=-1" fails at parse time with the flag's name.
//
// # Performance
//
// BenchmarkInfo, BenchmarkBridgeRatio and BenchmarkDisabledV compare logr
// on zap, klog through the bridge, and klog's own text format. klog.InfoS
// through the bridge costs about what logr on zap does, with the same
// allocations: the Logger caches the call-depth variants klog asks for on
// every line, and checks V-levels with one integer compare. A disabled
// V-level call costs a few nanoseconds and no allocation when guarded with
// `if v := log.V(5); v.Enabled() {...}`; unguarded, the key/value slice is
// allocated before the level is checked (logr and klog alike).
package logging
