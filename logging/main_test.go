package logging_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/kubekit/kubekit/testenv"
)

var env *testenv.Env

// TestMain starts one real control plane for the package and points
// $KUBECONFIG at it.
func TestMain(m *testing.M) {
	os.Exit(testenv.RunMain(m, func(e *testenv.Env) {
		env = e
		_ = os.Setenv("KUBECONFIG", e.KubeconfigPath())
	}))
}

// buffer is a bytes.Buffer safe for the concurrent writes client-go's
// HTTP trace callbacks make.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// lines decodes JSON log output, one object per line.
func lines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var res []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %v\n%s", err, sc.Text())
		}
		res = append(res, m)
	}
	return res
}

// find returns the first line whose msg is msg, or nil.
func find(ls []map[string]any, msg string) map[string]any {
	for _, l := range ls {
		if l["msg"] == msg {
			return l
		}
	}
	return nil
}
