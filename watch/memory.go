package watch

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// MemoryCheckpoint keeps the state in memory: a second Run of the same
// Watcher resumes, a new process does not. It is safe for concurrent use.
type MemoryCheckpoint struct {
	mu sync.Mutex
	s  *State
}

var _ Checkpoint = (*MemoryCheckpoint)(nil)

// NewMemoryCheckpoint returns an empty in-memory checkpoint.
func NewMemoryCheckpoint() *MemoryCheckpoint { return &MemoryCheckpoint{} }

// String names the checkpoint in errors and logs.
func (m *MemoryCheckpoint) String() string { return "memory checkpoint" }

// Load returns a copy of the saved state, or nil.
func (m *MemoryCheckpoint) Load(ctx context.Context) (*State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return cloneState(m.s), nil
}

// Save stores a copy of s.
func (m *MemoryCheckpoint) Save(ctx context.Context, s *State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s == nil {
		return errors.New("watch: MemoryCheckpoint.Save(nil): pass a state")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s = cloneState(s)
	return nil
}

func cloneState(s *State) *State {
	if s == nil {
		return nil
	}
	c := *s
	c.Objects = slices.Clone(s.Objects)
	return &c
}
