package logging

import (
	"flag"
	"strconv"

	"github.com/spf13/pflag"
)

// Flags holds the logging settings a program takes from its command line:
// -v/--v, --log-format and --log-file. Bind them to the program's own flag
// set, parse, then pass the Flags to [New] with [WithFlags]. Field values at
// bind time are the flags' defaults (an empty Format means json).
//
// Nothing is registered on import and klog's own flags (log_dir, vmodule,
// alsologtostderr...) are never added, so the program's --help lists only
// these three.
type Flags struct {
	// Verbosity is the -v value: V(n) lines show when n <= Verbosity.
	Verbosity int
	// Format is the --log-format value: "json" or "console".
	Format string
	// File is the --log-file value: also write the log to this file.
	File string
}

const (
	usageV      = "log verbosity: V(n) lines are written when n <= v (0-127; client-go logs each request at 6, headers at 7, bodies at 8 and up)"
	usageFormat = `log format: "json" or "console"`
	usageFile   = "also write the log to this file (appended to, created if missing)"
)

func (f *Flags) defaults() {
	if f.Format == "" {
		f.Format = FormatJSON
	}
}

// BindFlags adds -v, -log-format and -log-file to fs (the standard flag
// package also accepts --v, --log-format...). Bad values fail fs.Parse with
// an error naming the flag.
func (f *Flags) BindFlags(fs *flag.FlagSet) {
	f.defaults()
	fs.Var((*verbosityValue)(&f.Verbosity), "v", usageV)
	fs.Var((*formatValue)(&f.Format), "log-format", usageFormat)
	fs.StringVar(&f.File, "log-file", f.File, usageFile)
}

// BindPFlags adds -v/--v, --log-format and --log-file to a pflag set, such
// as a cobra command's Flags() or PersistentFlags().
func (f *Flags) BindPFlags(fs *pflag.FlagSet) {
	f.defaults()
	fs.VarP((*verbosityValue)(&f.Verbosity), "v", "v", usageV)
	fs.Var((*formatValue)(&f.Format), "log-format", usageFormat)
	fs.StringVar(&f.File, "log-file", f.File, usageFile)
}

// verbosityValue is a flag.Value and pflag.Value that rejects what New would.
type verbosityValue int

func (v *verbosityValue) String() string {
	if v == nil {
		return "0"
	}
	return strconv.Itoa(int(*v))
}

func (v *verbosityValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return err
	}
	if err := checkVerbosity(n); err != nil {
		return err
	}
	*v = verbosityValue(n)
	return nil
}

func (v *verbosityValue) Type() string { return "int" }

type formatValue string

func (f *formatValue) String() string {
	if f == nil {
		return ""
	}
	return string(*f)
}

func (f *formatValue) Set(s string) error {
	if err := checkFormat(s); err != nil {
		return err
	}
	*f = formatValue(s)
	return nil
}

func (f *formatValue) Type() string { return "string" }
