package watch_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kubekit/kubekit/watch"
)

func ref(ns, name, rv string) watch.ObjectRef {
	return watch.ObjectRef{Namespace: ns, Name: name, UID: types.UID("uid-" + name), ResourceVersion: rv}
}

// stateMap is s as namespace/name -> ref, for comparisons in any order.
func stateMap(s *watch.State) map[string]watch.ObjectRef {
	m := map[string]watch.ObjectRef{}
	for _, o := range s.Objects {
		m[o.Namespace+"/"+o.Name] = o
	}
	return m
}

func mustLoad(t *testing.T, path string) *watch.State {
	t.Helper()
	fc := fileCheckpoint(t, path)
	s, err := fc.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func checkState(t *testing.T, got *watch.State, rv string, want ...watch.ObjectRef) {
	t.Helper()
	w := &watch.State{Objects: want}
	if got == nil || got.ResourceVersion != rv || got.Resource != "configmaps" || !maps.Equal(stateMap(got), stateMap(w)) {
		t.Fatalf("state = %+v, want rv %s with %v", got, rv, want)
	}
}

// The file checkpoint saves changes as log lines after a full state, and
// loads the two together, in a new process too.
func TestFileCheckpointChanges(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "cp.json")
	fc := fileCheckpoint(t, path)
	a, b, c := ref("ns", "a", "1"), ref("ns", "b", "2"), ref("", "c", "3")
	if err := fc.SaveChanges(ctx, &watch.Changes{Resource: "configmaps", ResourceVersion: "4"}); err == nil || !strings.Contains(err.Error(), "needs a state loaded or saved first") {
		t.Fatalf("SaveChanges before Save = %v, want an error asking for a Load or a Save", err)
	}
	if s, err := fc.Load(ctx); s != nil || err != nil {
		t.Fatalf("Load of nothing = %v, %v", s, err)
	}
	if err := fc.SaveChanges(ctx, &watch.Changes{Resource: "configmaps", ResourceVersion: "4"}); err == nil || !strings.Contains(err.Error(), "needs a state loaded or saved first") {
		t.Fatalf("SaveChanges after a Load of nothing = %v, want an error asking for a Load or a Save", err)
	}
	if err := fc.Save(ctx, &watch.State{Resource: "configmaps", ResourceVersion: "3", Objects: []watch.ObjectRef{a, b, c}}); err != nil {
		t.Fatal(err)
	}
	checkState(t, mustLoad(t, path), "3", a, b, c)

	a2, d := ref("ns", "a", "5"), ref("other", "d", "6")
	if err := fc.SaveChanges(ctx, &watch.Changes{Resource: "configmaps", ResourceVersion: "7",
		Upserted: []watch.ObjectRef{a2, d}, Deleted: []watch.ObjectRef{{Namespace: "ns", Name: "b"}}}); err != nil {
		t.Fatalf("SaveChanges = %v", err)
	}
	checkState(t, mustLoad(t, path), "7", a2, c, d)
	// A bookmark: the position moves, no object changes.
	if err := fc.SaveChanges(ctx, &watch.Changes{Resource: "configmaps", ResourceVersion: "9"}); err != nil {
		t.Fatal(err)
	}
	checkState(t, mustLoad(t, path), "9", a2, c, d)

	// A crash in the middle of the next append: a torn last line is a save
	// that did not happen.
	log := path + ".log"
	good, _ := os.ReadFile(log)
	for _, tail := range []string{"0badc0de {\"rv\":\"10\"", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "12345678 {\"rv\":\"10\",\"up\":[],\"del\":[]}\n"} {
		if err := os.WriteFile(log, append(bytes.Clone(good), tail...), 0o600); err != nil {
			t.Fatal(err)
		}
		checkState(t, mustLoad(t, path), "9", a2, c, d)
	}
	// A bad line before the last one is corruption, not a crash.
	lines := strings.SplitAfter(string(good), "\n")
	corrupt := lines[0] + strings.Replace(lines[1], `"rv":"7"`, `"rv":"8"`, 1) + lines[2]
	if err := os.WriteFile(log, []byte(corrupt), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fc.Load(ctx); !errors.Is(err, watch.ErrBadCheckpoint) || !strings.Contains(err.Error(), "line 2: checksum mismatch") {
		t.Fatalf("Load with a corrupt middle line = %v, want ErrBadCheckpoint naming line 2", err)
	}

	// A full save starts a new log; the log of an older full state (a
	// crash between the two renames) is ignored.
	if err := os.WriteFile(log, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fc.Save(ctx, &watch.State{Resource: "configmaps", ResourceVersion: "20", Objects: []watch.ObjectRef{c}}); err != nil {
		t.Fatal(err)
	}
	checkState(t, mustLoad(t, path), "20", c)
	if err := os.WriteFile(log, good, 0o600); err != nil {
		t.Fatal(err)
	}
	checkState(t, mustLoad(t, path), "20", c)

	// After a Load of a whole log, changes are appended to it.
	if err := fc.Save(ctx, &watch.State{Resource: "configmaps", ResourceVersion: "20", Objects: []watch.ObjectRef{c}}); err != nil {
		t.Fatal(err)
	}
	if err := fc.SaveChanges(ctx, &watch.Changes{Resource: "configmaps", ResourceVersion: "20"}); err != nil {
		t.Fatal(err)
	}
	if _, err := fc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	base, _ := os.ReadFile(path)
	good, _ = os.ReadFile(log)
	e := ref("ns", "e", "21")
	if err := fc.SaveChanges(ctx, &watch.Changes{Resource: "configmaps", ResourceVersion: "21", Upserted: []watch.ObjectRef{e}}); err != nil {
		t.Fatalf("SaveChanges after Load = %v", err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, base) {
		t.Error("SaveChanges after a Load of a whole log rewrote the full state; want an append")
	}
	if l, _ := os.ReadFile(log); !bytes.HasPrefix(l, good) || bytes.Count(l, []byte("\n")) != bytes.Count(good, []byte("\n"))+1 {
		t.Errorf("log after SaveChanges after Load:\n%s\nwant the old log and one line", l)
	}
	checkState(t, mustLoad(t, path), "21", c, e)

	// After a Load of a torn log, the first changes fold the log into a new
	// full state (dropping the torn tail), and the next are appended again.
	whole, _ := os.ReadFile(log)
	if err := os.WriteFile(log, append(bytes.Clone(whole), "0badc0de {\"rv\":\"22\""...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	f := ref("ns", "f", "23")
	if err := fc.SaveChanges(ctx, &watch.Changes{Resource: "configmaps", ResourceVersion: "23", Upserted: []watch.ObjectRef{f}}); err != nil {
		t.Fatalf("SaveChanges after a Load of a torn log = %v", err)
	}
	if b, _ := os.ReadFile(path); bytes.Equal(b, base) {
		t.Error("SaveChanges after a Load of a torn log appended; want a new full state")
	}
	if l, _ := os.ReadFile(log); bytes.Count(l, []byte("\n")) != 1 || bytes.Contains(l, []byte("0badc0de")) {
		t.Errorf("log after the fold: %q, want a header alone", l)
	}
	checkState(t, mustLoad(t, path), "23", c, e, f)
	if err := fc.SaveChanges(ctx, &watch.Changes{Resource: "configmaps", ResourceVersion: "24", Deleted: []watch.ObjectRef{{Namespace: "ns", Name: "e"}}}); err != nil {
		t.Fatal(err)
	}
	if l, _ := os.ReadFile(log); bytes.Count(l, []byte("\n")) != 2 {
		t.Errorf("log after the next SaveChanges: %q, want the header and one line", l)
	}
	checkState(t, mustLoad(t, path), "24", c, f)
}

// A log that outgrows the full state (and 4 MiB) is folded into a new full
// state by the next save of changes, and nothing is lost.
func TestFileCheckpointCompaction(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "cp.json")
	fc := fileCheckpoint(t, path)
	if err := fc.Save(ctx, &watch.State{Resource: "configmaps", ResourceVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	var up []watch.ObjectRef
	for i := range 1000 {
		up = append(up, ref("ns", fmt.Sprintf("cm-%d", i), "2"))
	}
	logSize := func() int64 {
		t.Helper()
		fi, err := os.Stat(path + ".log")
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	saves := 0
	for prev := logSize(); ; {
		saves++
		if err := fc.SaveChanges(ctx, &watch.Changes{Resource: "configmaps", ResourceVersion: fmt.Sprint(saves + 1), Upserted: up}); err != nil {
			t.Fatal(err)
		}
		size := logSize()
		if size > prev { // appended
			if prev > 4<<20 {
				t.Fatalf("save %d: appended to a %d-byte log, want it folded into the full state past 4 MiB", saves, prev)
			}
			prev = size
			continue
		}
		// Folded: only the new log's header is left, and the full state
		// alone holds every object at the new position.
		if prev <= 4<<20 || size > 100 {
			t.Fatalf("save %d: the log went from %d to %d bytes, want a fold only past 4 MiB, to a header alone", saves, prev, size)
		}
		break
	}
	base, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := watch.DecodeState(base); err != nil || len(s.Objects) != 1000 || s.ResourceVersion != fmt.Sprint(saves+1) {
		t.Fatalf("full state after %d saves: %+v, %v; want 1000 objects at rv %d", saves, s, err, saves+1)
	}
	if s := mustLoad(t, path); len(s.Objects) != 1000 || s.ResourceVersion != fmt.Sprint(saves+1) {
		t.Fatalf("after %d saves: %d objects at rv %s", saves, len(s.Objects), s.ResourceVersion)
	}
	// The next changes go to the new log.
	if err := fc.SaveChanges(ctx, &watch.Changes{Resource: "configmaps", ResourceVersion: "999", Deleted: []watch.ObjectRef{{Namespace: "ns", Name: "cm-0"}}}); err != nil {
		t.Fatal(err)
	}
	if s := mustLoad(t, path); len(s.Objects) != 999 || s.ResourceVersion != "999" {
		t.Fatalf("after a delete: %d objects at rv %s, want 999 at 999", len(s.Objects), s.ResourceVersion)
	}
}

// Whatever the log holds, Load returns a state or an error matching
// ErrBadCheckpoint; it never panics.
func FuzzFileCheckpointLog(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "cp.json")
	fc := fileCheckpoint(f, path)
	if err := fc.Save(f.Context(), sampleState()); err != nil {
		f.Fatal(err)
	}
	if err := fc.SaveChanges(f.Context(), &watch.Changes{Resource: "configmaps", ResourceVersion: "50", Upserted: []watch.ObjectRef{ref("x", "b", "49")}, Deleted: []watch.ObjectRef{{Namespace: "x", Name: "a"}}}); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(path + ".log")
	if err != nil {
		f.Fatal(err)
	}
	base, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, log []byte) {
		if err := os.WriteFile(path, base, 0o600); err != nil { // a fold replaces it
			t.Fatal(err)
		}
		if err := os.WriteFile(path+".log", log, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := fc.Load(t.Context())
		if err != nil {
			if !errors.Is(err, watch.ErrBadCheckpoint) {
				t.Fatalf("error %v does not match ErrBadCheckpoint", err)
			}
			return
		}
		if s == nil || s.ResourceVersion == "" {
			t.Fatalf("Load = %+v", s)
		}
		for _, o := range s.Objects {
			if o.Name == "" || o.ResourceVersion == "" {
				t.Fatalf("object without name or resourceVersion: %+v", o)
			}
		}
		want := stateMap(s)
		// Changes saved after the Load (appended to a whole log, or folded
		// with a torn one into a new full state) load back on top of it.
		z := ref("z", "fz", "998")
		if err := fc.SaveChanges(t.Context(), &watch.Changes{Resource: s.Resource, ResourceVersion: "999", Upserted: []watch.ObjectRef{z}}); err != nil {
			t.Fatalf("SaveChanges after Load = %v", err)
		}
		want["z/fz"] = z
		s2 := mustLoad(t, path)
		got := stateMap(s2)
		if s2.ResourceVersion != "999" || !maps.Equal(got, want) {
			t.Fatalf("after SaveChanges: %d objects at rv %s, want %d at 999 (log %q)", len(got), s2.ResourceVersion, len(want), log)
		}
	})
}
