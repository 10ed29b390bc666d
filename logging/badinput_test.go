package logging_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubekit/kubekit/logging"
)

// TestBadInputs: every bad option gives an error from New naming what was
// wrong and how to fix it; none panics.
func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		opts []logging.Option
		want []string
	}{
		{"garbage time layout", []logging.Option{logging.WithTimeLayout("garbage")}, []string{`WithTimeLayout("garbage")`, "no time element", "RFC3339Nano"}},
		{"words as time layout", []logging.Option{logging.WithTimeLayout("the time is")}, []string{`WithTimeLayout("the time is")`}},
		{"upper-case format", []logging.Option{logging.WithFormat("JSON")}, []string{`WithFormat("JSON") / --log-format: unknown log format`, `"json" or "console"`}},
		{"text format", []logging.Option{logging.WithFormat("text")}, []string{`"text"`, `"console"`}},
		{"huge verbosity", []logging.Option{logging.WithVerbosity(1 << 30)}, []string{"out of range", "127"}},
		{"negative verbosity", []logging.Option{logging.WithVerbosity(-5)}, []string{"WithVerbosity(-5)", "use 0"}},
		{"nil output", []logging.Option{logging.WithOutput(nil)}, []string{"WithOutput(nil)", "io.Discard"}},
		{"file in missing directory", []logging.Option{logging.WithFile(filepath.Join(dir, "no", "x.log"))}, []string{"WithFile", "must exist"}},
		{"nil flags", []logging.Option{logging.WithFlags(nil)}, []string{"WithFlags(nil)", "BindFlags"}},
		{"several mistakes at once", []logging.Option{logging.WithFormat("xml"), logging.WithVerbosity(-1), logging.WithTimeLayout("x")},
			[]string{`"xml"`, "WithVerbosity(-1)", `WithTimeLayout("x")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("panicked: %v", p)
				}
			}()
			log, err := logging.New(tt.opts...)
			if err == nil {
				_ = log.Close()
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestEmptyFormatIsJSON: WithFormat("") means json, as an empty Flags.Format
// does (the doc's rule), instead of an "unknown format" error.
func TestEmptyFormatIsJSON(t *testing.T) {
	for name, opt := range map[string]logging.Option{
		"WithFormat":  logging.WithFormat(""),
		"Flags":       logging.WithFlags(&logging.Flags{}),
		"good layout": logging.WithTimeLayout("15:04:05"),
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := logging.New(opt, logging.WithOutput(&buf))
			if err != nil {
				t.Fatal(err)
			}
			log.Info("hello")
			if err := json.Unmarshal(buf.Bytes(), new(map[string]any)); err != nil {
				t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
			}
		})
	}
}

// TestMalformedKeysStayInfo: odd or non-string keys, which zapr reports as a
// separate DPANIC line with a stack trace, come out as one INFO (or ERROR)
// line with every pair kept.
func TestMalformedKeysStayInfo(t *testing.T) {
	tests := []struct {
		name  string
		log   func(l *logging.Logger)
		level string
		want  map[string]any
	}{
		{"odd", func(l *logging.Logger) { l.Info("m", "a", 1, "dangling") }, "INFO", map[string]any{"a": 1.0, "dangling": "(MISSING)"}},
		{"non-string key", func(l *logging.Logger) { l.Info("m", 42, "v", "b", 2) }, "INFO", map[string]any{"42": "v", "b": 2.0}},
		{"V-level", func(l *logging.Logger) { l.V(1).Info("m", "only") }, "INFO", map[string]any{"only": "(MISSING)", "v": 1.0}},
		{"error", func(l *logging.Logger) { l.Error(errors.New("boom"), "m", "k") }, "ERROR", map[string]any{"k": "(MISSING)", "err": "boom"}},
		{"WithValues", func(l *logging.Logger) { l.WithValues("w").Info("m", "x", 1) }, "INFO", map[string]any{"w": "(MISSING)", "x": 1.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := logging.New(logging.WithOutput(&buf), logging.WithVerbosity(1), logging.WithStacktraces(false))
			if err != nil {
				t.Fatal(err)
			}
			tt.log(log)
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("%d lines, want 1:\n%s", len(lines), buf.String())
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
				t.Fatal(err)
			}
			if got["level"] != tt.level || got["stacktrace"] != nil {
				t.Errorf("level %v, stacktrace %v, want %s and none: %s", got["level"], got["stacktrace"], tt.level, lines[0])
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v: %s", k, got[k], v, lines[0])
				}
			}
		})
	}
}
