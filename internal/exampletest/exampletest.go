package exampletest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Kube returns a clientset for cfg, the test's own view of the API server.
func Kube(t testing.TB, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	k, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// RunFunc is an example program's entry point.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Output is a buffer safe for the program's goroutines.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// Lines returns the lines written so far (nil if none).
func (o *Output) Lines() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.b.Len() == 0 {
		return nil
	}
	return strings.Split(strings.TrimSpace(o.b.String()), "\n")
}

// Start runs run with args in the background and returns its stdout and a
// stop function that cancels it (like SIGINT) and returns run's error; stop
// also runs at cleanup, failing the test if run did not return within 30s.
func Start(t *testing.T, run RunFunc, args ...string) (*Output, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var out, errOut Output
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, &out, &errOut) }()
	stop := sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("run did not return within 30s of cancel")
		}
	})
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return &out, stop
}

// WaitLines polls out until want accepts its lines, failing after 30s.
func WaitLines(t *testing.T, out *Output, want func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		lines := out.Lines()
		if want(lines) {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("output after 30s:\n%s", strings.Join(lines, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ExitCode runs the test binary again as the program: with envVar=1 and
// envVar_ARGS=args in its environment, the package's TestMain calls main
// (see RunAsMain). It returns the exit code and what the program wrote to
// stderr.
func ExitCode(t *testing.T, envVar, args string) (int, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), exe)
	cmd.Env = append(os.Environ(), envVar+"=1", envVar+"_ARGS="+args)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), errOut.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, errOut.String()
}

// RunAsMain is the TestMain side of ExitCode: when envVar is set, it runs
// main with the arguments from envVar_ARGS as the program prog and exits 0
// (main itself exits non-zero on an error); otherwise it returns.
func RunAsMain(envVar, prog string, main func()) {
	if os.Getenv(envVar) != "1" {
		return
	}
	os.Args = append([]string{prog}, strings.Fields(os.Getenv(envVar+"_ARGS"))...)
	main()
	os.Exit(0)
}
