// Package prometheus exports the metrics of kubekit's resumable watches to a
// Prometheus registry you choose; nothing is registered on import and no
// global state is touched.
//
//	reg := prometheus.NewRegistry()
//	m, err := watchprom.New(reg)
//	w, err := watch.New[*corev1.ConfigMap](ctx, c, watch.WithMetrics(m))
//
// One [Metrics] serves any number of Watchers; the "resource" label tells
// them apart (the group resource: "configmaps", "deployments.apps"):
//
//   - kubekit_watch_events_total{resource, type, synthetic}: events the
//     handler accepted, by type (ADDED, MODIFIED, DELETED) and whether they
//     were synthetic (reconstructed by a re-list after a gap);
//   - kubekit_watch_relists_total{resource, reason}: lists of the whole
//     resource, reason "start" (each Run) or "gap" (after 410 Gone or a lost
//     position);
//   - kubekit_watch_checkpoint_saves_total{resource, result} (result
//     "success" or "error") and
//     kubekit_watch_checkpoint_save_duration_seconds{resource};
//   - kubekit_watch_last_event_age_seconds{resource}: seconds since the
//     handler accepted the last event, computed at scrape time (a watch of
//     a quiet resource ages too; alert on it together with the relists).
package prometheus
