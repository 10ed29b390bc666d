package exampletest

import (
	"bytes"
	"context"
	"fmt"
	"io"
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
