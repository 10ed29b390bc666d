package queue_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: queues
// start a timer goroutine and Run starts workers, all of which must stop.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
