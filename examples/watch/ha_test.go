package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubekit/kubekit/internal/exampletest"
	"github.com/kubekit/kubekit/watch"
)

// Short Lease timings, so that takeovers take seconds.
const (
	haLease = 2 * time.Second
	haRenew = 1500 * time.Millisecond
	haRetry = 250 * time.Millisecond
)

// buildBinary builds the program once for the tests that run it as
// separate processes.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "kubekit-watch-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "watch")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, out)
	}
	return bin, nil
})

// line is one line a process wrote, with when the test read it.
type line struct {
	at   time.Time
	text string
}

// lines collects a process's output line by line.
type lines struct {
	mu      sync.Mutex
	partial []byte
	all     []line
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.all = append(l.all, line{time.Now(), string(l.partial[:i])})
		l.partial = l.partial[i+1:]
	}
}

func (l *lines) snapshot() []line {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.all)
}

// find returns when the first line containing s was read.
func (l *lines) find(s string) (time.Time, bool) {
	for _, ln := range l.snapshot() {
		if strings.Contains(ln.text, s) {
			return ln.at, true
		}
	}
	return time.Time{}, false
}

// replica is one process of the program.
type replica struct {
	id             string
	cmd            *exec.Cmd
	stdout, stderr lines
	done           chan struct{}
	err            error
}

func startReplica(t *testing.T, id string, args ...string) *replica {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{id: id, done: make(chan struct{})}
	r.cmd = exec.Command(bin, append([]string{"--kubeconfig", env.KubeconfigPath(), "--id", id}, args...)...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.err = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGCONT)
		_ = r.cmd.Process.Kill()
		<-r.done
	})
	return r
}

func (r *replica) signal(t *testing.T, s syscall.Signal) {
	t.Helper()
	if err := r.cmd.Process.Signal(s); err != nil {
		t.Fatal(err)
	}
}

// exited waits for the process to end and returns its exit code.
func (r *replica) exited(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(within):
		t.Fatalf("replica %s did not exit within %v; stderr:\n%s", r.id, within, r.stderrText())
	}
	var ee *exec.ExitError
	if errors.As(r.err, &ee) {
		return ee.ExitCode()
	}
	return 0
}

func (r *replica) stderrText() string {
	var b strings.Builder
	for _, l := range r.stderr.snapshot() {
		b.WriteString(l.text + "\n")
	}
	return b.String()
}

// stopped says whether the process is stopped (SIGSTOP), from /proc.
func (r *replica) stopped() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.cmd.Process.Pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && len(b) > i+2 && b[i+2] == 'T'
}

// poll waits for cond, failing after within.
func poll(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leaderOf waits until one of rs prints "leading as" after since and
// returns it and when.
func leaderOf(t *testing.T, since time.Time, rs ...*replica) (*replica, time.Time) {
	t.Helper()
	var who *replica
	var at time.Time
	poll(t, "a new leader", 20*time.Second, func() bool {
		for _, r := range rs {
			for _, l := range r.stderr.snapshot() {
				if l.text == "leading as "+r.id && l.at.After(since) {
					who, at = r, l.at
					return true
				}
			}
		}
		return false
	})
	return who, at
}

// haWrite is one change the writer made.
type haWrite struct {
	name, op, rv string // rv of the created or updated object; "" for a delete
}

// haWriter makes n changes to ConfigMaps in ns, one every pace: creates,
// updates and deletes over 150 objects.
func haWriter(t *testing.T, k kubernetes.Interface, ns string, n int, pace time.Duration) []haWrite {
	cms := k.CoreV1().ConfigMaps(ns)
	exists := map[string]bool{}
	var writes []haWrite
	tick := time.NewTicker(pace)
	defer tick.Stop()
	for i := range n {
		<-tick.C
		name := fmt.Sprintf("obj-%03d", i%150)
		var w haWrite
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			var o *corev1.ConfigMap
			switch {
			case !exists[name]:
				w = haWrite{name: name, op: "create"}
				o, err = cms.Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": strconv.Itoa(i)}}, metav1.CreateOptions{})
			case i%7 == 0:
				w = haWrite{name: name, op: "delete"}
				err = cms.Delete(t.Context(), name, metav1.DeleteOptions{})
			default:
				w = haWrite{name: name, op: "update"}
				o, err = cms.Update(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": strconv.Itoa(i)}}, metav1.UpdateOptions{})
			}
			if err == nil {
				if o != nil {
					w.rv = o.ResourceVersion
				}
				break
			}
			if apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) {
				break // an earlier attempt went through
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil && !apierrors.IsAlreadyExists(err) && !apierrors.IsNotFound(err) {
			t.Errorf("write %d (%s %s): %v", i, w.op, name, err)
			return writes
		}
		exists[name] = w.op != "delete"
		writes = append(writes, w)
	}
	return writes
}

// event is one printed event line.
type event struct {
	typ, name string
	rv        uint64
	resync    bool
	at        time.Time
}

func parseEvents(t *testing.T, r *replica, ns string) []event {
	t.Helper()
	var out []event
	for _, l := range r.stdout.snapshot() {
		f := strings.Fields(l.text)
		if len(f) < 3 || !strings.HasPrefix(f[1], ns+"/") {
			t.Fatalf("replica %s printed %q, want TYPE %s/NAME RV", r.id, l.text, ns)
		}
		rv, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			t.Fatalf("replica %s printed %q: %v", r.id, l.text, err)
		}
		out = append(out, event{typ: f[0], name: strings.TrimPrefix(f[1], ns+"/"), rv: rv, resync: len(f) > 3, at: l.at})
	}
	return out
}

// Two replicas with --leader-elect and one --checkpoint-configmap, under
// 3,000 writes: the leader is SIGKILLed three times (and restarted), then
// SIGSTOPped past its Lease and SIGCONTed. The union of what the replicas
// printed, checked against every write and the server's final state: no
// change lost, per-object order kept within each leader's run, only the
// last unsaved batch replayed; the woken leader prints and saves nothing
// and exits 1; SIGTERM hands over at once and exits 0.
func TestTwoReplicasFailover(t *testing.T) {
	if _, err := buildBinary(); err != nil {
		t.Fatal(err)
	}
	k := exampletest.Kube(t, env.Config())
	ctx := t.Context()
	ns, cpNS := "ex-watch-ha", "ex-watch-ha-cp"
	for _, n := range []string{ns, cpNS} {
		if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Every checkpoint write, with its writer and when it was seen.
	type cpWrite struct {
		writer, rv string
		at         time.Time
	}
	var cpMu sync.Mutex
	var cpWrites []cpWrite
	cw, err := k.CoreV1().ConfigMaps(cpNS).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cw.Stop()
	go func() {
		for ev := range cw.ResultChan() {
			if cm, ok := ev.Object.(*corev1.ConfigMap); ok && cm.Name == "pos" {
				cpMu.Lock()
				cpWrites = append(cpWrites, cpWrite{cm.Annotations[watch.WriterAnnotation], cm.ResourceVersion, time.Now()})
				cpMu.Unlock()
			}
		}
	}()
	lastWriter := func() string {
		cpMu.Lock()
		defer cpMu.Unlock()
		if len(cpWrites) == 0 {
			return ""
		}
		return cpWrites[len(cpWrites)-1].writer
	}

	args := []string{"-n", ns, "--checkpoint-configmap", cpNS + "/pos", "--leader-elect", cpNS + "/watch",
		"--lease-duration", haLease.String(), "--renew-deadline", haRenew.String(), "--retry-period", haRetry.String()}
	started := time.Now()
	var all []*replica
	spawn := func(id string) *replica {
		r := startReplica(t, id, args...)
		all = append(all, r)
		return r
	}
	lead := spawn("a0")
	if r, _ := leaderOf(t, started, lead); r != lead {
		t.Fatal("the first replica does not lead")
	}
	follower := spawn("b0")

	const nWrites = 3000
	writes := make(chan []haWrite, 1)
	go func() { writes <- haWriter(t, k, ns, nWrites, 8*time.Millisecond) }()

	var takeovers []time.Duration
	printed := func(r *replica) int { return len(r.stdout.snapshot()) }
	for i := 1; i <= 3; i++ {
		poll(t, "the leader printing", 20*time.Second, func() bool { return printed(lead) >= 100 })
		poll(t, "the leader saving", 20*time.Second, func() bool { return lastWriter() == lead.id })
		killed := time.Now()
		lead.signal(t, syscall.SIGKILL)
		lead.exited(t, 10*time.Second)
		next, at := leaderOf(t, killed, follower)
		takeovers = append(takeovers, at.Sub(killed))
		t.Logf("SIGKILL %d: %s took over from %s after %v", i, next.id, lead.id, at.Sub(killed).Round(time.Millisecond))
		lead, follower = next, spawn(fmt.Sprintf("%c%d", lead.id[0], i))
	}

	// SIGSTOP the leader past its Lease; the follower takes over and saves.
	poll(t, "the leader printing", 20*time.Second, func() bool { return printed(lead) >= 100 })
	paused := lead
	stoppedAt := time.Now()
	paused.signal(t, syscall.SIGSTOP)
	poll(t, "the leader stopped", 5*time.Second, paused.stopped)
	next, at := leaderOf(t, stoppedAt, follower)
	takeovers = append(takeovers, at.Sub(stoppedAt))
	t.Logf("SIGSTOP: %s took over from %s after %v", next.id, paused.id, at.Sub(stoppedAt).Round(time.Millisecond))
	poll(t, "the new leader saving", 20*time.Second, func() bool { return lastWriter() == next.id })
	before := printed(paused)
	woken := time.Now()
	paused.signal(t, syscall.SIGCONT)
	if code := paused.exited(t, 15*time.Second); code != 1 || !strings.Contains(paused.stderrText(), "lost the leadership") {
		t.Errorf("the woken leader exited %d, want 1 with \"lost the leadership\"; stderr:\n%s", code, paused.stderrText())
	}
	if after := printed(paused); after != before {
		t.Errorf("the woken leader printed %d events after it woke, want none: %v", after-before, paused.stdout.snapshot()[before:])
	}
	cpMu.Lock()
	for _, w := range cpWrites {
		if w.writer == paused.id && w.at.After(woken) {
			t.Errorf("the woken leader %s wrote the checkpoint after it woke", paused.id)
		}
	}
	cpMu.Unlock()
	lead, follower = next, spawn("z0")

	ws := <-writes
	if len(ws) != nWrites {
		t.Fatalf("the writer made %d of %d writes", len(ws), nWrites)
	}
	final, err := k.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the leader printed the last change.
	lastRV := uint64(0)
	for _, w := range ws {
		if rv, _ := strconv.ParseUint(w.rv, 10, 64); rv > lastRV {
			lastRV = rv
		}
	}
	poll(t, "the leader printing the last write", 20*time.Second, func() bool {
		evs := parseEvents(t, lead, ns)
		return len(evs) > 0 && evs[len(evs)-1].rv >= lastRV
	})

	// A clean stop hands over at once and exits 0.
	termAt := time.Now()
	lead.signal(t, syscall.SIGTERM)
	if code := lead.exited(t, 15*time.Second); code != 0 || !strings.Contains(lead.stderrText(), "stopped leading") {
		t.Errorf("SIGTERM: exit %d, want 0 after \"stopped leading\"; stderr:\n%s", code, lead.stderrText())
	}
	if t.Failed() {
		cpMu.Lock()
		t.Logf("checkpoint writes: %v\nnew leader's stderr:\n%s", cpWrites, follower.stderrText())
		cpMu.Unlock()
	}
	_, at = leaderOf(t, termAt, follower)
	t.Logf("SIGTERM: %s took over after %v (the Lease released)", follower.id, at.Sub(termAt).Round(time.Millisecond))
	if d := at.Sub(termAt); d > haLease {
		t.Errorf("takeover after SIGTERM took %v, want less than the lease duration (%v): the Lease is released", d, haLease)
	}
	follower.signal(t, syscall.SIGTERM)
	if code := follower.exited(t, 15*time.Second); code != 0 {
		t.Errorf("the last leader exited %d on SIGTERM, want 0", code)
	}
	for _, d := range takeovers {
		if d > haLease+haRetry+3*time.Second {
			t.Errorf("takeover took %v, want about the lease duration plus a retry period (%v)", d, haLease+haRetry)
		}
	}

	// The union of what the replicas printed, run by run (each replica led once at most).
	type session struct {
		id  string
		evs []event
	}
	var sessions []session
	for _, r := range all {
		if evs := parseEvents(t, r, ns); len(evs) > 0 {
			if _, ok := r.stderr.find("leading as " + r.id); !ok {
				t.Errorf("replica %s printed events without leading", r.id)
			}
			sessions = append(sessions, session{r.id, evs})
		}
	}
	slices.SortFunc(sessions, func(a, b session) int { return a.evs[0].at.Compare(b.evs[0].at) })
	printedBy := map[string]map[uint64]string{} // name -> rv -> type
	var total, replays, resyncs int
	for i, s := range sessions {
		last := map[string]uint64{}
		for _, e := range s.evs {
			if e.rv <= last[e.name] {
				t.Errorf("%s printed %s %s %d after %d: out of order", s.id, e.typ, e.name, e.rv, last[e.name])
			}
			last[e.name] = e.rv
			if i > 0 && e.at.Before(sessions[i-1].evs[len(sessions[i-1].evs)-1].at) {
				t.Errorf("%s printed while %s still did", s.id, sessions[i-1].id)
			}
			if printedBy[e.name] == nil {
				printedBy[e.name] = map[uint64]string{}
			}
			if _, dup := printedBy[e.name][e.rv]; dup {
				replays++
			}
			printedBy[e.name][e.rv] = e.typ
			total++
			if e.resync {
				resyncs++
			}
		}
	}
	t.Logf("%d sessions printed %d events for %d writes: %d replays of unsaved batches, %d resync events; takeovers %v",
		len(sessions), total, nWrites, replays, resyncs, takeovers)
	if replays > 4*watch.DefaultCheckpointEvents {
		t.Errorf("%d replays, want at most the last unsaved batch per takeover", replays)
	}

	// Every write was printed: creates and updates with their resourceVersion,
	// deletes as a DELETED between the writes around them.
	lost := 0
	prev := map[string]uint64{}
	nextRV := func(i int, name string) uint64 {
		for _, w := range ws[i+1:] {
			if w.name == name && w.rv != "" {
				rv, _ := strconv.ParseUint(w.rv, 10, 64)
				return rv
			}
		}
		return 1 << 62
	}
	for i, w := range ws {
		switch w.op {
		case "delete":
			found := false
			hi := nextRV(i, w.name)
			for rv, typ := range printedBy[w.name] {
				if typ == "DELETED" && rv > prev[w.name] && rv < hi {
					found = true
				}
			}
			if !found {
				lost++
				t.Errorf("write %d: the delete of %s after rv %d was never printed", i, w.name, prev[w.name])
			}
		default:
			rv, _ := strconv.ParseUint(w.rv, 10, 64)
			want := map[string]string{"create": "ADDED", "update": "MODIFIED"}[w.op]
			if typ := printedBy[w.name][rv]; typ != want {
				lost++
				t.Errorf("write %d: %s of %s at rv %d printed as %q, want %s", i, w.op, w.name, rv, typ, want)
			}
			prev[w.name] = rv
		}
		if lost > 10 {
			t.Fatal("too many lost changes")
		}
	}
	// And the server's final state is what the last events say.
	for _, cm := range final.Items {
		rv, _ := strconv.ParseUint(cm.ResourceVersion, 10, 64)
		if printedBy[cm.Name][rv] == "" {
			t.Errorf("%s at rv %d in the final state was never printed", cm.Name, rv)
		}
	}
	t.Logf("%d of %d changes lost", lost, nWrites)
}
