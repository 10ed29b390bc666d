package informer

// WatchErrors returns the last list/watch error of every informer of f, by
// "resource namespace", for tests.
func WatchErrors(f *Factory) map[string]error {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]error{}
	for _, e := range f.entries {
		e.errMu.Lock()
		for ns, err := range e.lastErr {
			if err != nil {
				out[e.gvr.Resource+" "+ns] = err
			}
		}
		e.errMu.Unlock()
	}
	return out
}
