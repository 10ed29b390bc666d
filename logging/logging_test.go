package logging_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/zapr"
	"go.uber.org/goleak"

	"github.com/kubekit/kubekit/logging"
)

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		opts []logging.Option
		want []string
	}{
		{"unknown format", []logging.Option{logging.WithFormat("xml")}, []string{`WithFormat("xml") / --log-format: unknown log format`, `"json" or "console"`}},
		{"negative verbosity", []logging.Option{logging.WithVerbosity(-1)}, []string{"WithVerbosity(-1) / -v: out of range", "use 0"}},
		{"verbosity too high", []logging.Option{logging.WithVerbosity(128)}, []string{"WithVerbosity(128) / -v: out of range", "127"}},
		{"missing directory", []logging.Option{logging.WithFile(filepath.Join(dir, "nope", "x.log"))}, []string{"cannot open the log file", "no such file or directory", "must exist and be writable"}},
		{"file is a directory", []logging.Option{logging.WithFile(dir)}, []string{"cannot open the log file", "is a directory"}},
		{"nil output", []logging.Option{logging.WithOutput(nil)}, []string{"WithOutput(nil)", "io.Discard"}},
		{"flags and explicit", []logging.Option{logging.WithFlags(&logging.Flags{}), logging.WithVerbosity(2), logging.WithFile("x")}, []string{"WithFlags: conflicts with WithVerbosity, WithFile"}},
		{"nil flags", []logging.Option{logging.WithFlags(nil)}, []string{"WithFlags(nil)"}},
		{"bad flags values", []logging.Option{logging.WithFlags(&logging.Flags{Verbosity: -3, Format: "text"})}, []string{"WithVerbosity(-3)", `WithFormat("text") / --log-format: unknown log format`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, err := logging.New(tt.opts...)
			if err == nil {
				t.Fatalf("New succeeded (%v), want an error", log)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestZeroLogger(t *testing.T) {
	var l logging.Logger
	if err := l.Sync(); err == nil {
		t.Error("Sync on a zero Logger succeeded")
	}
	if err := l.Close(); err == nil {
		t.Error("Close on a zero Logger succeeded")
	}
	if _, err := l.RouteKlog(); err == nil || !strings.Contains(err.Error(), "logging.New") {
		t.Errorf("RouteKlog on a zero Logger: err = %v", err)
	}
}

func TestLevelsAndFields(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // the shared control plane's goroutines
	var out buffer
	log, err := logging.New(logging.WithOutput(&out), logging.WithVerbosity(2))
	if err != nil {
		t.Fatal(err)
	}
	if log.Verbosity() != 2 {
		t.Fatalf("Verbosity() = %d", log.Verbosity())
	}
	log.Info("zero", "k", "v")
	log.V(1).Info("one")
	log.V(2).Info("two")
	log.V(3).Info("three")
	log.Error(errors.New("boom"), "failed", "k", 1)
	log.WithName("sub").WithValues("pod", "ns/p").Info("named")
	log.WithName("sub").WithValues("a", 1).V(3).Info("named three") // derived loggers keep the verbosity
	log.WithName("sub").V(2).Info("named two")
	if err := log.Sync(); err != nil {
		t.Fatal(err)
	}

	ls := lines(t, out.String())
	if find(ls, "three") != nil || find(ls, "named three") != nil {
		t.Errorf("V(3) written at verbosity 2:\n%s", out.String())
	}
	for _, tc := range []struct {
		msg string
		v   float64
	}{{"zero", 0}, {"one", 1}, {"two", 2}} {
		l := find(ls, tc.msg)
		if l == nil {
			t.Fatalf("%q missing:\n%s", tc.msg, out.String())
		}
		if l["level"] != "INFO" || l["v"] != tc.v {
			t.Errorf("%q: level %v v %v, want INFO and %v", tc.msg, l["level"], l["v"], tc.v)
		}
		if _, ok := l["stacktrace"]; ok {
			t.Errorf("%q has a stack trace", tc.msg)
		}
		if c, _ := l["caller"].(string); !strings.HasPrefix(c, "logging/logging_test.go:") {
			t.Errorf("%q: caller %q, want this file", tc.msg, c)
		}
		ts, _ := l["ts"].(string)
		if _, err := time.Parse(logging.DefaultTimeLayout, ts); err != nil {
			t.Errorf("%q: ts %q: %v", tc.msg, ts, err)
		}
	}
	e := find(ls, "failed")
	if e == nil || e["level"] != "ERROR" || e["err"] != "boom" || e["k"] != 1.0 {
		t.Fatalf("error line = %v", e)
	}
	if st, _ := e["stacktrace"].(string); !strings.Contains(st, "TestLevelsAndFields") {
		t.Errorf("error stack trace = %q", st)
	}
	if _, ok := e["v"]; ok {
		t.Errorf("error line has a v field: %v", e)
	}
	if n := find(ls, "named"); n == nil || n["logger"] != "sub" || n["pod"] != "ns/p" {
		t.Errorf("named line = %v", n)
	}
	if n := find(ls, "named two"); n == nil || n["v"] != 2.0 || !strings.HasPrefix(n["caller"].(string), "logging/logging_test.go:") {
		t.Errorf("named V(2) line = %v", n)
	}
	if u, ok := log.GetSink().(zapr.Underlier); !ok || u.GetUnderlying().Core() != log.Zap().Core() {
		t.Error("the sink does not expose the zap logger as zapr.Underlier")
	}
}

func TestFormatOptions(t *testing.T) {
	tests := []struct {
		name  string
		opts  []logging.Option
		match []string // regexps the Info and Error lines must match
		not   []string
	}{
		{
			name:  "console",
			opts:  []logging.Option{logging.WithFormat(logging.FormatConsole), logging.WithTimeLayout("2006-01-02 15:04:05.00")},
			match: []string{`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d\d\tINFO\tlogging/logging_test\.go:\d+\thello\t\{"v": 1, "k": "v"\}$`, `(?m)^\S+ \S+\tERROR\tlogging/logging_test\.go:\d+\tbad\t\{"err": "boom"\}\n\S+TestFormatOptions`},
		},
		{
			name:  "no caller, no time, no stack",
			opts:  []logging.Option{logging.WithCaller(false), logging.WithTimeLayout(""), logging.WithStacktraces(false)},
			match: []string{`(?m)^\{"level":"INFO","msg":"hello","v":1,"k":"v"\}$`, `(?m)^\{"level":"ERROR","msg":"bad","err":"boom"\}$`},
			not:   []string{"stacktrace", "caller", "ts"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out buffer
			log, err := logging.New(append(tt.opts, logging.WithOutput(&out), logging.WithVerbosity(1))...)
			if err != nil {
				t.Fatal(err)
			}
			log.V(1).Info("hello", "k", "v")
			log.Error(errors.New("boom"), "bad")
			for _, m := range tt.match {
				if !regexp.MustCompile(m).MatchString(out.String()) {
					t.Errorf("output does not match %s:\n%s", m, out.String())
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out.String(), n) {
					t.Errorf("output contains %q:\n%s", n, out.String())
				}
			}
		})
	}
}

func TestFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, []byte("earlier\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out buffer
	log, err := logging.New(logging.WithOutput(&out), logging.WithFile(path))
	if err != nil {
		t.Fatal(err)
	}
	log.Info("to both", "n", 1)
	log.Error(errors.New("boom"), "error to both")
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	if err := log.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "earlier\n" + out.String(); string(got) != want || !strings.Contains(want, "error to both") {
		t.Fatalf("file =\n%s\nwant (appended, same bytes as the stream)\n%s", got, want)
	}

	onlyFile := filepath.Join(t.TempDir(), "only.log")
	log, err = logging.New(logging.WithOutput(io.Discard), logging.WithFile(onlyFile))
	if err != nil {
		t.Fatal(err)
	}
	log.Info("file only")
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(onlyFile); !strings.Contains(string(b), `"msg":"file only"`) {
		t.Fatalf("file = %q", b)
	}
}

func TestConcurrentWrites(t *testing.T) {
	var out buffer
	log, err := logging.New(logging.WithOutput(&out), logging.WithFile(filepath.Join(t.TempDir(), "x.log")))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	done := make(chan struct{})
	for i := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := range 100 {
				log.Info("line", "g", i, "j", j)
			}
		}()
	}
	for range 4 {
		<-done
	}
	if n := len(lines(t, out.String())); n != 400 {
		t.Fatalf("%d lines, want 400", n)
	}
}
