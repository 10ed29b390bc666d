package client

import (
	"context"
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
)

// logWarnings is the default warning handler: each distinct API warning
// (HTTP Warning header, code 299) is logged once, at info level, on the
// client's logger.
type logWarnings struct {
	log  logr.Logger
	mu   sync.Mutex
	seen map[string]struct{}
}

func newLogWarnings(l logr.Logger) *logWarnings {
	return &logWarnings{log: l, seen: map[string]struct{}{}}
}

// HandleWarningHeaderWithContext logs message unless it was logged before.
func (w *logWarnings) HandleWarningHeaderWithContext(_ context.Context, code int, _ string, message string) {
	if code != 299 || message == "" {
		return
	}
	w.mu.Lock()
	_, dup := w.seen[message]
	w.seen[message] = struct{}{}
	w.mu.Unlock()
	if !dup {
		w.log.Info("Warning from the API server", "warning", message)
	}
}

var _ rest.WarningHandlerWithContext = (*logWarnings)(nil)

// WarningWriter adapts client-go's [rest.NewWarningWriter] (which has no
// context variant) for [WithWarningHandler]. With Deduplicate it prints each
// distinct warning once, as kubectl does on its stderr:
//
//	client.WithWarningHandler(client.WarningWriter(rest.NewWarningWriter(os.Stderr, rest.WarningWriterOptions{Deduplicate: true})))
func WarningWriter(h rest.WarningHandler) rest.WarningHandlerWithContext {
	return warningAdapter{h}
}

type warningAdapter struct{ h rest.WarningHandler }

func (a warningAdapter) HandleWarningHeaderWithContext(_ context.Context, code int, agent, message string) {
	a.h.HandleWarningHeader(code, agent, message)
}
