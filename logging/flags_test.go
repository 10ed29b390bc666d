package logging_test

import (
	"bytes"
	"flag"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/kubekit/kubekit/logging"
)

// klogFlagNames are klog's own flags; none may reach the program's flag set.
var klogFlagNames = []string{"log_dir", "log_file", "log_file_max_size", "logtostderr", "alsologtostderr", "vmodule", "log_backtrace_at", "stderrthreshold", "skip_headers", "add_dir_header", "one_output"}

func TestBindFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "x.log")
	tests := []struct {
		name    string
		args    []string
		want    logging.Flags
		wantErr string
	}{
		{"defaults", nil, logging.Flags{Format: "json"}, ""},
		{"single dash", []string{"-v=6", "-log-format=console", "-log-file", file}, logging.Flags{Verbosity: 6, Format: "console", File: file}, ""},
		{"double dash", []string{"--v", "3", "--log-format", "json"}, logging.Flags{Verbosity: 3, Format: "json"}, ""},
		{"negative v", []string{"-v=-1"}, logging.Flags{}, `invalid value "-1" for flag -v: logging: WithVerbosity(-1) / -v: out of range`},
		{"v not a number", []string{"-v=high"}, logging.Flags{}, `invalid value "high" for flag -v`},
		{"bad format", []string{"--log-format=text"}, logging.Flags{}, `invalid value "text" for flag -log-format: logging: WithFormat("text") / --log-format: unknown log format; use "json" or "console"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("prog", flag.ContinueOnError)
			fs.SetOutput(new(bytes.Buffer))
			var f logging.Flags
			f.BindFlags(fs)
			err := fs.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f != tt.want {
				t.Fatalf("flags = %+v, want %+v", f, tt.want)
			}
			log, err := logging.New(logging.WithFlags(&f), logging.WithOutput(new(bytes.Buffer)))
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()
			if log.Verbosity() != tt.want.Verbosity {
				t.Fatalf("Verbosity() = %d", log.Verbosity())
			}
		})
	}
}

func TestBindPFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    logging.Flags
		wantErr string
	}{
		{"defaults", nil, logging.Flags{Format: "json"}, ""},
		{"shorthand", []string{"-v", "4"}, logging.Flags{Verbosity: 4, Format: "json"}, ""},
		{"shorthand attached", []string{"-v6", "--log-format=console"}, logging.Flags{Verbosity: 6, Format: "console"}, ""},
		{"long", []string{"--v=2", "--log-file", "a.log"}, logging.Flags{Verbosity: 2, Format: "json", File: "a.log"}, ""},
		{"negative v", []string{"--v=-2"}, logging.Flags{}, `invalid argument "-2" for "-v, --v" flag: logging: WithVerbosity(-2) / -v: out of range`},
		{"bad format", []string{"--log-format", "yaml"}, logging.Flags{}, `WithFormat("yaml") / --log-format: unknown log format`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("prog", pflag.ContinueOnError)
			fs.SetOutput(new(bytes.Buffer))
			var f logging.Flags
			f.BindPFlags(fs)
			err := fs.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f != tt.want {
				t.Fatalf("flags = %+v, want %+v", f, tt.want)
			}
		})
	}
}

// TestHelpListsOnlyOurFlags checks that binding (and routing klog, which
// uses a private flag set) adds exactly three flags and none of klog's.
func TestHelpListsOnlyOurFlags(t *testing.T) {
	log, err := logging.New(logging.WithOutput(new(bytes.Buffer)))
	if err != nil {
		t.Fatal(err)
	}
	restore, err := log.RouteKlog()
	if err != nil {
		t.Fatal(err)
	}
	defer restore()

	var std []string
	fs := flag.NewFlagSet("prog", flag.ContinueOnError)
	new(logging.Flags).BindFlags(fs)
	fs.VisitAll(func(f *flag.Flag) { std = append(std, f.Name) })
	var p []string
	pfs := pflag.NewFlagSet("prog", pflag.ContinueOnError)
	new(logging.Flags).BindPFlags(pfs)
	pfs.VisitAll(func(f *pflag.Flag) { p = append(p, f.Name) })
	for _, names := range [][]string{std, p} {
		if !slices.Equal(names, []string{"log-file", "log-format", "v"}) {
			t.Errorf("flags = %v", names)
		}
	}
	flag.CommandLine.VisitAll(func(f *flag.Flag) {
		if slices.Contains(klogFlagNames, f.Name) || f.Name == "v" {
			t.Errorf("flag.CommandLine has klog's flag %q", f.Name)
		}
	})

	var help bytes.Buffer
	pfs.SetOutput(&help)
	pfs.PrintDefaults()
	if !regexp.MustCompile(`-v, --v int +log verbosity`).MatchString(help.String()) || !strings.Contains(help.String(), `--log-format string   log format: "json" or "console" (default "json")`) {
		t.Errorf("help:\n%s", help.String())
	}
	for _, k := range klogFlagNames {
		if strings.Contains(help.String(), k+" ") || strings.Contains(help.String(), k+"=") {
			t.Errorf("help mentions klog's %q:\n%s", k, help.String())
		}
	}
}
