package main

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type line struct {
	elapsed time.Duration
	demo    string
	text    string
}

func parse(t *testing.T, out string) []line {
	t.Helper()
	var lines []line
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) != 4 || !strings.HasPrefix(f[1], "+") {
			t.Fatalf("bad line %q", l)
		}
		if _, err := time.Parse("15:04:05.000", f[0]); err != nil {
			t.Fatalf("bad timestamp in %q: %v", l, err)
		}
		secs, err := strconv.ParseFloat(strings.TrimSuffix(f[1][1:], "s"), 64)
		if err != nil {
			t.Fatalf("bad elapsed time in %q: %v", l, err)
		}
		lines = append(lines, line{time.Duration(secs * float64(time.Second)), f[2], f[3]})
	}
	return lines
}

func texts(lines []line, demo string) []string {
	var out []string
	for _, l := range lines {
		if l.demo == demo {
			out = append(out, l.text)
		}
	}
	return out
}

func TestAllDemos(t *testing.T) {
	var out, errOut bytes.Buffer
	start := time.Now()
	if err := run(t.Context(), nil, &out, &errOut); err != nil {
		t.Fatalf("run: %v (stderr %s)", err, errOut.String())
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("demos took %v, want them quick", took)
	}
	lines := parse(t, out.String())

	wantPlain := []string{
		"add 1 len=1", "add 2 len=2", "add 3 len=3", "add 4 len=4", "add 5 len=5",
		"add 3 len=5", // duplicate merged
		"get 1 len=4", "get 2 len=3", "get 3 len=2", "get 4 len=1", "get 5 len=0",
		"get after ShutDown: shutdown=true",
	}
	if got := texts(lines, "plain"); strings.Join(got, "|") != strings.Join(wantPlain, "|") {
		t.Errorf("plain demo:\n got %q\nwant %q", got, wantPlain)
	}

	got := texts(lines, "delaying")
	if len(got) != 7 || got[3] != "get 1 len=0" || got[4] != "get 2 len=0" || got[5] != "get 3 len=0" {
		t.Errorf("delaying demo: want adds 3,1,2 then gets 1,2,3; got %q", got)
	}
	for _, l := range lines {
		if l.demo == "delaying" && strings.HasPrefix(l.text, "get ") && !strings.Contains(l.text, "ShutDown") {
			i, _ := strconv.Atoi(strings.Fields(l.text)[1])
			if min := time.Duration(i) * 200 * time.Millisecond; l.elapsed < min-time.Millisecond {
				t.Errorf("delaying: item %d got at +%v, before its %v delay", i, l.elapsed, min)
			}
		}
	}

	got = texts(lines, "ratelimited")
	if len(got) != 21 || got[20] != "get after ShutDown: shutdown=true" {
		t.Fatalf("ratelimited demo: want 10 adds, 10 gets, shutdown; got %q", got)
	}
	var last time.Duration
	for _, l := range lines {
		if l.demo == "ratelimited" && l.text == "get 10 len=0" {
			last = l.elapsed
		}
	}
	// burst 5 at 20 qps: items 6..10 wait 50ms each.
	if last < 240*time.Millisecond {
		t.Errorf("ratelimited: 10th item at +%v, want >= 250ms (bucket pacing)", last)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown demo", []string{"--demo", "nope"}, `--demo="nope"`},
		{"bad delay", []string{"--delay", "0s"}, "--delay=0s"},
		{"bad bucket", []string{"--demo", "ratelimited", "--burst", "0"}, "WithBucket"},
		{"extra args", []string{"x"}, "unexpected arguments"},
		{"bad flag", []string{"--nope"}, "unknown flag: --nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(t.Context(), tt.args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error()+errOut.String(), tt.want) {
				t.Fatalf("err = %v (stderr %q), want it to mention %q", err, errOut.String(), tt.want)
			}
		})
	}
}

// TestHelp: --help prints the usage and is pflag.ErrHelp, which main turns
// into exit 0 without an error line.
func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"--help"}, &out, &errOut); !errors.Is(err, pflag.ErrHelp) {
		t.Fatalf("run(--help) = %v, want pflag.ErrHelp", err)
	}
	if !strings.Contains(errOut.String(), "Usage of workqueue") {
		t.Fatalf("usage:\n%s", errOut.String())
	}
}
