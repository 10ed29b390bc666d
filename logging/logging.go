package logging

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Logger is a zap-backed [logr.Logger] plus what it takes to flush and close
// it. The embedded logr.Logger is what the rest of the program uses (pass
// log.Logger to client.WithLogger, klog.NewContext, controllers...).
//
// A Logger is safe for concurrent use. Close it (or at least Sync it) before
// the program exits so that nothing buffered is lost.
type Logger struct {
	logr.Logger

	zap       *zap.Logger
	verbosity int
	file      *os.File

	closeOnce sync.Once
	closeErr  error
}

// New builds a Logger from the options: JSON to stderr, verbosity 0, caller
// and error stack traces on, unless the options say otherwise. It returns an
// error for an unknown format, a verbosity outside 0..[MaxVerbosity], or a log
// file that cannot be opened.
func New(opts ...Option) (*Logger, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}

	// zap's cores do not serialise writes; zap.Config.Build locks its
	// outputs, and so do we.
	out := zapcore.Lock(zapcore.AddSync(stream{o.output}))
	sinks := []zapcore.WriteSyncer{out}
	var file *os.File
	if o.file != "" {
		f, err := os.OpenFile(o.file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("logging: WithFile(%q) / --log-file: cannot open the log file: %w; the directory must exist and be writable", o.file, err)
		}
		file = f
		sinks = append(sinks, f)
	}

	var enc zapcore.Encoder
	if o.format == FormatConsole {
		enc = zapcore.NewConsoleEncoder(encoderConfig(&o))
	} else {
		enc = zapcore.NewJSONEncoder(encoderConfig(&o))
	}
	// One core, one encoding per entry: the stream and the file get the
	// same bytes.
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.NewMultiWriteSyncer(sinks...)), zapcore.Level(-o.verbosity))
	zopts := []zap.Option{zap.ErrorOutput(out)}
	if o.caller {
		zopts = append(zopts, zap.AddCaller())
	}
	if o.stacktraces {
		zopts = append(zopts, zap.AddStacktrace(zapcore.ErrorLevel))
	}
	zl := zap.New(core, zopts...)

	return &Logger{
		Logger:    logr.New(newLevelSink(zapr.NewLoggerWithOptions(zl, zapr.LogInfoLevel("v"), zapr.ErrorKey("err")).GetSink(), o.verbosity)),
		zap:       zl,
		verbosity: o.verbosity,
		file:      file,
	}, nil
}

func encoderConfig(o *options) zapcore.EncoderConfig {
	c := zapcore.EncoderConfig{
		MessageKey:     "msg",
		LevelKey:       "level",
		NameKey:        "logger",
		StacktraceKey:  "stacktrace",
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeLevel:    encodeLevel,
		EncodeDuration: zapcore.StringDurationEncoder,
		EncodeCaller:   zapcore.ShortCallerEncoder,
		EncodeName:     zapcore.FullNameEncoder,
	}
	if o.timeLayout != "" {
		c.TimeKey = "ts"
		c.EncodeTime = zapcore.TimeEncoderOfLayout(o.timeLayout)
	}
	if o.caller {
		c.CallerKey = "caller"
	}
	return c
}

// encodeLevel prints V-levels (zap levels below info) as INFO: the V-level
// itself is in the "v" field that zapr adds.
func encodeLevel(l zapcore.Level, enc zapcore.PrimitiveArrayEncoder) {
	if l < zapcore.InfoLevel {
		l = zapcore.InfoLevel
	}
	enc.AppendString(l.CapitalString())
}

// stream is the output writer without a Sync method: syncing a terminal or
// pipe fails with EINVAL on Linux, and stderr is unbuffered anyway.
type stream struct{ io.Writer }

// Verbosity returns the verbosity the Logger was built with.
func (l *Logger) Verbosity() int { return l.verbosity }

// Zap returns the underlying zap logger, for code that wants zap's typed
// fields. It writes to the same outputs at the same level.
func (l *Logger) Zap() *zap.Logger { return l.zap }

// Sync flushes buffered output and syncs the log file to disk.
func (l *Logger) Sync() error {
	if l == nil || l.zap == nil {
		return errNotNew
	}
	return l.zap.Sync()
}

// Close syncs and closes the log file. Lines logged after Close still reach
// the output stream but not the file (zap reports the failed file write on
// the stream). Close may be called more than once.
func (l *Logger) Close() error {
	if l == nil || l.zap == nil {
		return errNotNew
	}
	l.closeOnce.Do(func() {
		l.closeErr = l.zap.Sync()
		if l.file != nil {
			l.closeErr = errors.Join(l.closeErr, l.file.Close())
		}
	})
	return l.closeErr
}

var errNotNew = errors.New("logging: Logger not created with logging.New")
