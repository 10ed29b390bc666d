package watch_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kubekit/kubekit/watch"
)

// realisticState is a state of n objects as a cluster of Pods has them:
// 15-character namespaces, 30-character names (a Deployment's, its
// ReplicaSet's hash and the Pod's suffix), random UIDs and 8-digit
// resourceVersions.
func realisticState(n int) *watch.State {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	str := func(alphabet string, k int) string {
		b := make([]byte, k)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	const lower, alnum = "abcdefghijklmnopqrstuvwxyz", "bcdfghjklmnpqrstvwxz2456789"
	namespaces := make([]string, 40)
	for i := range namespaces {
		namespaces[i] = "tenant-" + str(lower, 8)
	}
	type deployment struct{ ns, prefix string }
	deployments := make([]deployment, max(n/50, 1))
	for i := range deployments {
		deployments[i] = deployment{namespaces[r.IntN(len(namespaces))], str(lower, 13) + "-" + str(alnum, 10) + "-"}
	}
	s := &watch.State{Resource: `pods namespace="" labelSelector="" fieldSelector=""`, ResourceVersion: "99999999", Objects: make([]watch.ObjectRef, n)}
	seen := map[string]bool{}
	for i := range s.Objects {
		d := deployments[r.IntN(len(deployments))]
		name := d.prefix + str(alnum, 5)
		for seen[d.ns+"/"+name] {
			name = d.prefix + str(alnum, 5)
		}
		seen[d.ns+"/"+name] = true
		h := str("0123456789abcdef", 32)
		uid := h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
		s.Objects[i] = watch.ObjectRef{Namespace: d.ns, Name: name, UID: types.UID(uid), ResourceVersion: fmt.Sprint(10000000 + r.IntN(89999999))}
	}
	return s
}

func sortedRefs(objs []watch.ObjectRef) []watch.ObjectRef {
	out := slices.Clone(objs)
	slices.SortFunc(out, func(a, b watch.ObjectRef) int { return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name) })
	return out
}

// configMapBytes sums the data of the ConfigMaps in ns.
func configMapBytes(t *testing.T, k kubernetes.Interface, ns string) (count, size int) {
	t.Helper()
	l, err := k.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range l.Items {
		if cm.Name == "kube-root-ca.crt" {
			continue
		}
		count++
		for _, v := range cm.BinaryData {
			size += len(v)
		}
		for _, v := range cm.Data {
			size += len(v)
		}
	}
	return count, size
}

// 10,000 and 100,000 objects with realistic names save and load through the
// real API server: compressed, and past 1 MiB spread over shards that a
// second save replaces (the old ones deleted). It logs bytes per object and
// the save and load times.
func TestConfigMapCheckpointLarge(t *testing.T) {
	k := kube(t, env.Config())
	for _, n := range []int{10_000, 100_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ns := fmt.Sprintf("watch-large-%d", n)
			createNamespace(t, k, ns)
			want := realisticState(n)
			w := configMapCheckpoint(t, k, ns, "cp", "writer")
			if _, err := w.Load(t.Context()); err != nil {
				t.Fatal(err)
			}
			started := time.Now()
			if err := w.Save(t.Context(), want); err != nil {
				t.Fatal(err)
			}
			saved := time.Since(started)
			started = time.Now()
			got, err := configMapCheckpoint(t, k, ns, "cp", "reader").Load(t.Context())
			loaded := time.Since(started)
			if err != nil {
				t.Fatal(err)
			}
			if got.ResourceVersion != want.ResourceVersion || got.Resource != want.Resource || !slices.Equal(sortedRefs(got.Objects), sortedRefs(want.Objects)) {
				t.Fatalf("loaded %d objects at %s, want the %d saved at %s", len(got.Objects), got.ResourceVersion, len(want.Objects), want.ResourceVersion)
			}
			cms, size := configMapBytes(t, k, ns)
			t.Logf("%d objects: %d ConfigMaps, %d bytes (%.1f bytes/object), save %v, load %v",
				n, cms, size, float64(size)/float64(n), saved.Round(time.Millisecond), loaded.Round(time.Millisecond))
			if n == 100_000 && cms < 3 {
				t.Errorf("%d ConfigMaps for 100,000 objects, want a head and shards", cms)
			}

			// A second save replaces the shards: as many ConfigMaps as before.
			want.ResourceVersion = "100000000"
			want.Objects = want.Objects[1:]
			if err := w.Save(t.Context(), want); err != nil {
				t.Fatal(err)
			}
			if again, _ := configMapBytes(t, k, ns); again != cms {
				t.Errorf("%d ConfigMaps after the second save, want %d (the replaced shards deleted)", again, cms)
			}
			got, err = configMapCheckpoint(t, k, ns, "cp", "reader").Load(t.Context())
			if err != nil || got.ResourceVersion != want.ResourceVersion || len(got.Objects) != n-1 {
				t.Fatalf("Load after the second save = %v objects, %v", len(got.Objects), err)
			}
		})
	}
}

// The fence holds on the head of a sharded state: the stale writer's save
// conflicts, leaves the newer state and no shards of its own behind.
func TestShardedCheckpointFenced(t *testing.T) {
	k := kube(t, env.Config())
	ns := "watch-shard-fence"
	createNamespace(t, k, ns)
	st := realisticState(60_000)
	a := configMapCheckpoint(t, k, ns, "cp", "writer-a")
	b := configMapCheckpoint(t, k, ns, "cp", "writer-b")
	for _, cp := range []*watch.ConfigMapCheckpoint{a, b} {
		if _, err := cp.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Save(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	cms, _ := configMapBytes(t, k, ns)
	if cms < 3 {
		t.Fatalf("%d ConfigMaps for 60,000 objects, want a head and shards", cms)
	}
	stale := *st
	stale.ResourceVersion = "1"
	if err := b.Save(t.Context(), &stale); !errors.Is(err, watch.ErrCheckpointConflict) || !strings.Contains(err.Error(), `"writer-a"`) {
		t.Fatalf("stale save = %v, want ErrCheckpointConflict naming writer-a", err)
	}
	if again, _ := configMapBytes(t, k, ns); again != cms {
		t.Errorf("%d ConfigMaps after the stale save, want %d (its shards deleted)", again, cms)
	}
	if got, err := configMapCheckpoint(t, k, ns, "cp", "reader").Load(t.Context()); err != nil || got.ResourceVersion != st.ResourceVersion {
		t.Fatalf("Load after the stale save = %v, want a's position %s", err, st.ResourceVersion)
	}

	// A damaged shard fails Load's integrity check.
	l, err := k.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range l.Items {
		if strings.HasPrefix(cm.Name, "cp-") {
			cm.BinaryData["part"][100] ^= 0xff
			if _, err := k.CoreV1().ConfigMaps(ns).Update(t.Context(), &cm, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if _, err := configMapCheckpoint(t, k, ns, "cp", "reader").Load(t.Context()); !errors.Is(err, watch.ErrBadCheckpoint) || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("Load with a damaged shard = %v, want ErrBadCheckpoint naming the checksum", err)
	}
}
