package watch

import "time"

// Metrics observes a [Watcher] for monitoring; package
// github.com/kubekit/kubekit/watch/prometheus implements it. Set it with
// [WithMetrics]. The calls come from Run's goroutines and must not block.
// resource names the Watcher's resource ("configmaps", "deployments.apps").
type Metrics interface {
	// EventDelivered is called when the handler accepted an event.
	EventDelivered(resource string, t EventType, synthetic bool)
	// Relisted is called after each list of the whole resource: reason is
	// "start" for the first one of a Run, "gap" after a 410 Gone or a lost
	// watch position.
	Relisted(resource, reason string)
	// CheckpointSaved is called after each checkpoint write, with how long
	// it took and its error (nil on success).
	CheckpointSaved(resource string, took time.Duration, err error)
}

// WithMetrics reports the Watcher's events, re-lists and checkpoint saves to
// m. Default: none.
func WithMetrics(m Metrics) Option { return optionFunc(func(o *options) { o.metrics = m }) }
