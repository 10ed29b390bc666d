package watch

import (
	"slices"

	"k8s.io/apimachinery/pkg/types"
)

// The saver's known set: what gap recovery compares a re-list with, what a
// full save writes and what tells a batch's last change of each object.

// ref is what the known set holds of an object.
type ref struct {
	uid types.UID
	rv  string
}

// change is one handled event's effect on the known set.
type change struct {
	k   objKey
	ref ref
	del bool
}

// restore starts from a loaded state. The checkpoint holds it, so the
// first save may save changes only.
func (s *saver) restore(st *State) {
	s.needFull = false
	s.rv = st.ResourceVersion
	s.known = make(map[objKey]ref, len(st.Objects))
	for _, o := range st.Objects {
		s.known[key(o.Namespace, o.Name)] = ref{uid: o.UID, rv: o.ResourceVersion}
	}
}

// lookup returns what the known set holds of k; call sync first.
func (s *saver) lookup(k objKey) (ref, bool) {
	r, ok := s.known[k]
	return r, ok
}

// missing returns the known keys not in seen, sorted; call sync first.
func (s *saver) missing(seen map[objKey]struct{}) []objKey {
	var gone []objKey
	for k := range s.known {
		if _, ok := seen[k]; !ok {
			gone = append(gone, k)
		}
	}
	slices.SortFunc(gone, compareKeys)
	return gone
}

// reserve sizes an empty known set for n objects; call sync first.
func (s *saver) reserve(n int) {
	if len(s.known) == 0 {
		s.known = make(map[objKey]ref, n)
	}
}

// fold applies changes to the known set, in order.
func (s *saver) fold(batch []change) {
	for _, c := range batch {
		if c.del {
			delete(s.known, c.k)
		} else {
			s.known[c.k] = c.ref
		}
	}
}

// changes lists the objects the batch changed, as they are now: each
// upserted object once, each deleted one once per deletion in the batch (a
// repeat is harmless). Call it after folding the batch, when the known set
// is the state now: a change that is not what the known set holds is not
// the object's last in the batch and is left out, with no per-batch map of
// what was seen.
func (s *saver) changes(j saveJob) *Changes {
	c := &Changes{Resource: s.identity, ResourceVersion: j.rv, Upserted: s.refs(len(j.batch))}
	for _, ch := range j.batch {
		now, known := s.known[ch.k]
		switch {
		case ch.del && !known:
			c.Deleted = append(c.Deleted, ObjectRef{Namespace: ch.k.ns, Name: ch.k.name})
		case !ch.del && known && now == ch.ref:
			c.Upserted = append(c.Upserted, ObjectRef{Namespace: ch.k.ns, Name: ch.k.name, UID: ch.ref.uid, ResourceVersion: ch.ref.rv})
		}
	}
	return c
}

// refs returns an empty slice for n changed objects: the last Changes'
// memory when the checkpoint is this package's, else a new one (a user's
// DeltaCheckpoint may keep what it is given). At 10,000 events
// (BenchmarkWatchEvents) a new one each save was 0.66 MB of the 4.9 MB
// kubekit's side allocated per run beyond the raw watch's.
func (s *saver) refs(n int) []ObjectRef {
	if s.compact == nil || n > keepBuf { // not the memory of a large re-list
		return make([]ObjectRef, 0, n)
	}
	if cap(s.spareRefs) < n {
		s.spareRefs = make([]ObjectRef, 0, max(n, min(s.batch, keepBuf)))
	}
	return s.spareRefs[:0]
}

// snapshot is the state to save: the position and the known objects.
func (s *saver) snapshot(rv string) *State {
	st := &State{Resource: s.identity, ResourceVersion: rv, Objects: make([]ObjectRef, 0, len(s.known))}
	for k, v := range s.known {
		st.Objects = append(st.Objects, ObjectRef{Namespace: k.ns, Name: k.name, UID: v.uid, ResourceVersion: v.rv})
	}
	return st
}
