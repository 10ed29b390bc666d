package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"go.uber.org/goleak"
	"k8s.io/klog/v2"

	"github.com/kubekit/kubekit/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.RunMain(m, func(e *testenv.Env) { env = e }))
}

// jsonLines decodes the JSON log and indexes it by message.
func jsonLines(t *testing.T, s string) map[string]map[string]any {
	t.Helper()
	res := map[string]map[string]any{}
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, sc.Text())
		}
		res[m["msg"].(string)] = m
	}
	return res
}

// The runs route klog, so they are not parallel; run restores klog.
func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // run closes its connections
	tests := []struct {
		name  string
		args  []string
		shown []string
		gone  []string
	}{
		{"v=0", []string{"--log-format=json"}, []string{"Kubernetes server info"}, []string{"Connecting", "I am a V(1) line", "Kubernetes server details", "Response"}},
		{"v=3", []string{"-v", "3", "--log-format", "json"}, []string{"Kubernetes server info", "Connecting", "I am a V(1) line", "Kubernetes server details", "I am a V(3) line", "kubernetes client configured"}, []string{"Response"}},
		{"v=6", []string{"--v=6", "--log-format=json"}, []string{"Kubernetes server info", "I am a V(3) line", "Response"}, []string{"Request Body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "app.log")
			var out, errOut bytes.Buffer
			args := append([]string{"--kubeconfig", env.KubeconfigPath(), "--context", "kubekit-testenv", "--log-file", file}, tt.args...)
			if err := run(t.Context(), args, &out, &errOut); err != nil {
				t.Fatalf("run: %v\n%s", err, errOut.String())
			}
			if out.String() != testenv.KubernetesVersion+"\n" {
				t.Fatalf("stdout = %q", out.String())
			}
			ls := jsonLines(t, errOut.String())
			for _, msg := range tt.shown {
				if ls[msg] == nil {
					t.Errorf("%q missing:\n%s", msg, errOut.String())
				}
			}
			for _, msg := range tt.gone {
				if ls[msg] != nil {
					t.Errorf("%q shown:\n%s", msg, errOut.String())
				}
			}
			info := ls["Kubernetes server info"]
			if info["version"] != testenv.KubernetesVersion || info["level"] != "INFO" || info["v"] != 0.0 || info["platform"] == "" {
				t.Errorf("server info line = %v", info)
			}
			if r := ls["Response"]; r != nil && (r["status"] != "200 OK" || r["v"] != 6.0 || !strings.HasSuffix(r["url"].(string), "/version")) {
				t.Errorf("Response line = %v", r)
			}
			if got, err := os.ReadFile(file); err != nil || string(got) != errOut.String() {
				t.Errorf("log file (%v) differs from stderr:\n%s", err, got)
			}
			if klog.V(1).Enabled() {
				t.Error("klog's verbosity was not restored")
			}
		})
	}
}

func TestConsoleIsDefault(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"--kubeconfig", env.KubeconfigPath(), "-v2"}, &out, &errOut); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	for _, re := range []string{
		`(?m)^\S+\tINFO\tlogging/main\.go:\d+\tKubernetes server info\t\{"v": 0, "version": "v1\.37\.2", "platform": "linux/\w+", "goVersion": "go[\d.]+"\}$`,
		`(?m)^\S+\tINFO\tclient\tclient/client\.go:\d+\tkubernetes client configured\t\{"v": 1, `,
		`(?m)^\S+\tINFO\tlogging/main\.go:\d+\tKubernetes server details\t\{"v": 2, "major": "1", "minor": "37", `,
	} {
		if !regexp.MustCompile(re).MatchString(errOut.String()) {
			t.Errorf("stderr does not match %s:\n%s", re, errOut.String())
		}
	}
	if strings.Contains(errOut.String(), "V(3)") {
		t.Errorf("V(3) line at -v2:\n%s", errOut.String())
	}
}

// TestHelp checks that --help lists this program's flags and nothing of
// klog's, although the program routes klog.
func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"--help"}, &out, &errOut)
	if !errors.Is(err, pflag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([\w-]+)`).FindAllStringSubmatch(errOut.String(), -1) {
		names = append(names, m[1])
	}
	if want := []string{"context", "kubeconfig", "log-file", "log-format", "v"}; !slices.Equal(names, want) {
		t.Fatalf("flags in --help = %v, want %v:\n%s", names, want, errOut.String())
	}
	for _, k := range []string{"log_dir", "vmodule", "logtostderr", "alsologtostderr", "stderrthreshold", "log_file", "skip_headers"} {
		if strings.Contains(errOut.String(), k) {
			t.Errorf("--help mentions klog's %s", k)
		}
	}
	if !strings.Contains(errOut.String(), `-v, --v int`) || !strings.Contains(errOut.String(), `(default "console")`) {
		t.Errorf("help:\n%s", errOut.String())
	}
	if out.Len() != 0 {
		t.Errorf("stdout = %q", out.String())
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"negative v", []string{"-v=-1"}, `invalid argument "-1" for "-v, --v" flag: logging: WithVerbosity(-1) / -v: out of range`},
		{"unknown format", []string{"--log-format=xml"}, `WithFormat("xml") / --log-format: unknown log format; use "json" or "console"`},
		{"unwritable log file", []string{"--log-file", filepath.Join(missing, "app.log")}, "cannot open the log file"},
		{"log file is a directory", []string{"--log-file", dir}, "is a directory"},
		{"missing kubeconfig", []string{"--kubeconfig", missing}, "no such file"},
		{"unknown context", []string{"--kubeconfig", env.KubeconfigPath(), "--context", "nope"}, `no context "nope"`},
		{"unexpected argument", []string{"extra"}, `unexpected arguments ["extra"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBERNETES_SERVICE_HOST", "")
			var out, errOut bytes.Buffer
			err := run(t.Context(), tt.args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v (stderr %q), want it to mention %q", err, errOut.String(), tt.want)
			}
			if out.Len() != 0 {
				t.Fatalf("stdout on error: %q", out.String())
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"--kubeconfig", env.KubeconfigPath(), "--log-format=json"}, &out, &errOut)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	e := jsonLines(t, errOut.String())["Failed to get the Kubernetes server version"]
	if e == nil || e["level"] != "ERROR" || !strings.Contains(e["err"].(string), "context canceled") {
		t.Fatalf("error line = %v\n%s", e, errOut.String())
	}
}
