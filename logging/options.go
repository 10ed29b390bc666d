package logging

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Format names for [WithFormat] and the --log-format flag.
const (
	// FormatJSON writes one JSON object per line: the default, for
	// machines (log collectors, jq).
	FormatJSON = "json"
	// FormatConsole writes tab-separated, human-readable lines with the
	// fields as a JSON object at the end.
	FormatConsole = "console"
)

// MaxVerbosity is the highest accepted verbosity. zap levels are int8 and
// zapr maps V(n) to zap level -n, so V-levels above 127 cannot be expressed.
const MaxVerbosity = 127

// DefaultTimeLayout is the time layout used unless [WithTimeLayout] says
// otherwise: RFC 3339 with milliseconds.
const DefaultTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Option configures [New]. Options are validated together in New, after the
// defaults, so their order never matters.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	verbosity   int
	format      string
	output      io.Writer
	file        string
	timeLayout  string
	caller      bool
	stacktraces bool

	flags    *Flags
	flagsSet bool
	explicit []string // WithVerbosity/WithFormat/WithFile, which conflict with WithFlags
}

func defaultOptions() options {
	return options{
		format:      FormatJSON,
		output:      os.Stderr,
		timeLayout:  DefaultTimeLayout,
		caller:      true,
		stacktraces: true,
	}
}

// validate applies WithFlags and checks every setting, naming the fix.
func (o *options) validate() error {
	if o.flagsSet {
		if o.flags == nil {
			return errors.New("logging: WithFlags(nil): pass the *Flags you bound with BindFlags or BindPFlags")
		}
		if len(o.explicit) > 0 {
			return fmt.Errorf("logging: WithFlags: conflicts with %s, the flags already set verbosity, format and file; drop one of them", strings.Join(o.explicit, ", "))
		}
		o.verbosity, o.format, o.file = o.flags.Verbosity, o.flags.Format, o.flags.File
	}
	if o.format == "" {
		o.format = FormatJSON // WithFormat("") and an empty Flags.Format alike
	}
	var errs []error
	if err := checkVerbosity(o.verbosity); err != nil {
		errs = append(errs, err)
	}
	if err := checkFormat(o.format); err != nil {
		errs = append(errs, err)
	}
	if err := checkTimeLayout(o.timeLayout); err != nil {
		errs = append(errs, err)
	}
	if o.output == nil {
		errs = append(errs, errors.New("logging: WithOutput(nil): use WithOutput(io.Discard) to write only to the log file"))
	}
	return errors.Join(errs...)
}

func checkVerbosity(v int) error {
	if v < 0 || v > MaxVerbosity {
		return fmt.Errorf("logging: WithVerbosity(%d) / -v: out of range; use 0 (the default: only V(0) lines) up to %d (V(n) lines show when n <= verbosity: client-go logs requests at 6, bodies at 8 and up)", v, MaxVerbosity)
	}
	return nil
}

func checkFormat(f string) error {
	switch f {
	case FormatJSON, FormatConsole:
		return nil
	}
	return fmt.Errorf("logging: WithFormat(%q) / --log-format: unknown log format; use %q or %q", f, FormatJSON, FormatConsole)
}

// checkTimeLayout rejects a layout without a single time element, such as
// "garbage", which would stamp every line with the same text.
func checkTimeLayout(layout string) error {
	if layout == "" {
		return nil
	}
	ref := time.Date(2001, 2, 3, 4, 5, 6, 7e6, time.UTC)
	out := ref.Format(layout)
	if out == layout {
		return fmt.Errorf("logging: WithTimeLayout(%q): the layout has no time element, so every line would carry the same text; use a time.Format layout such as %q (the default), time.RFC3339Nano, or \"\" to leave time stamps out", layout, DefaultTimeLayout)
	}
	if _, err := time.Parse(layout, out); err != nil {
		return fmt.Errorf("logging: WithTimeLayout(%q): not a usable time.Format layout (%v); use one such as %q (the default) or time.RFC3339Nano", layout, err, DefaultTimeLayout)
	}
	return nil
}

// WithVerbosity sets the one verbosity knob, with klog semantics: V(n) lines
// are written when n <= v. zap's level is set to -v to match, because zapr
// turns V(n) into zap level -n. Default 0 (only V(0), Info and Error lines);
// must be 0..[MaxVerbosity]. Conflicts with [WithFlags].
func WithVerbosity(v int) Option {
	return optionFunc(func(o *options) { o.verbosity = v; o.explicit = append(o.explicit, "WithVerbosity") })
}

// WithFormat sets the encoding: [FormatJSON] (default) or [FormatConsole].
// An empty format means json, as an empty [Flags.Format] does; anything else
// is an error from [New]. Conflicts with [WithFlags].
func WithFormat(format string) Option {
	return optionFunc(func(o *options) { o.format = format; o.explicit = append(o.explicit, "WithFormat") })
}

// WithOutput sets the stream the log is written to. Default os.Stderr; use
// io.Discard to write only to the file from [WithFile]. Writes are
// serialised by the Logger, so w need not be safe for concurrent use.
func WithOutput(w io.Writer) Option {
	return optionFunc(func(o *options) { o.output = w })
}

// WithFile also writes every line to the file at path, created if missing
// (mode 0644) and appended to. Default: no file. Opening it is part of [New],
// so a missing directory or a permission problem is New's error.
// Conflicts with [WithFlags].
func WithFile(path string) Option {
	return optionFunc(func(o *options) { o.file = path; o.explicit = append(o.explicit, "WithFile") })
}

// WithTimeLayout sets the time.Format layout of each line's time stamp.
// Default [DefaultTimeLayout]; "" leaves the time stamp out (handy in tests
// and examples, or under a collector that adds its own). A layout with no
// time element ("garbage") is an error from [New].
func WithTimeLayout(layout string) Option {
	return optionFunc(func(o *options) { o.timeLayout = layout })
}

// WithCaller sets whether each line carries the file:line that logged it
// (for client-go's lines, the client-go source file). Default true.
func WithCaller(enabled bool) Option {
	return optionFunc(func(o *options) { o.caller = enabled })
}

// WithStacktraces sets whether Error lines carry a stack trace. Info and
// V-level lines never do. Default true.
func WithStacktraces(enabled bool) Option {
	return optionFunc(func(o *options) { o.stacktraces = enabled })
}

// WithFlags takes verbosity, format and file from flags bound with
// [Flags.BindFlags] or [Flags.BindPFlags] (read when New runs, so call New
// after parsing). Conflicts with [WithVerbosity], [WithFormat] and
// [WithFile]: New returns an error if both are given.
func WithFlags(f *Flags) Option {
	return optionFunc(func(o *options) { o.flags = f; o.flagsSet = true })
}
