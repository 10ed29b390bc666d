package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// RunMain is for a test package's TestMain: it starts one control plane for
// the whole package, hands it to set, runs the tests and stops it, even when
// the tests fail or a test panics on the TestMain goroutine. It returns the
// exit code for os.Exit. If the control plane cannot start (for example the
// binaries were not built) it prints why, naming "make testbin", and fails.
//
//	var env *testenv.Env
//	func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m, func(e *testenv.Env) { env = e })) }
func RunMain(m *testing.M, set func(*Env), opts ...Option) (code int) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	env, err := Start(ctx, opts...)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start the test control plane: %v\n", err)
		return 1
	}
	defer func() {
		if r := recover(); r != nil {
			_ = env.Stop()
			panic(r)
		}
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: stop: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}()
	set(env)
	return m.Run()
}
