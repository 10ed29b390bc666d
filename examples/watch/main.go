// Command watch watches one resource through kubekit's watch package and
// prints one line per event, as it happens:
//
//	ADDED default/web-1 12345
//	MODIFIED default/web-1 12350
//	DELETED default/web-1 12351
//	DELETED default/old 12001 (resync)
//
// Cluster-scoped objects print just their name. Lines ending in " (resync)"
// are synthetic: after a gap the API server no longer remembers (410 Gone),
// the watch re-listed and reports what changed in between.
//
// Usage:
//
//	go run ./examples/watch --kubeconfig .kube.config --resource configmaps -n default
//	go run ./examples/watch --resource deployments.apps -l app=web --checkpoint /tmp/deploy.json
//	go run ./examples/watch -n default --checkpoint-configmap default/watch-pos --leader-elect default/watch
//
// --resource takes a plural resource name, qualified by its group unless it
// is in the core group ("pods", "deployments.apps", "widgets.example.com").
// With --checkpoint FILE the position is saved in FILE (and FILE.log), with
// --checkpoint-configmap NAMESPACE/NAME in that ConfigMap (and shards of it
// past 1 MiB): on SIGINT/SIGTERM the program saves it and exits 0, and the
// next run prints exactly what changed in between.
//
// # Two replicas
//
// With --leader-elect NAMESPACE/NAME, replicas campaign for that Lease and
// only the leader watches and prints; the others wait. The leader prints
// "leading as <id>" to stderr when it starts and "stopped leading" when it
// stops. On SIGTERM it saves the checkpoint, releases the Lease (a follower
// takes over within a retry period) and exits 0. A leader that loses the
// Lease (it could not renew it within --renew-deadline: paused, cut off)
// stops at once, prints why and exits 1, so a supervisor restarts it as a
// follower. Give the replicas one --checkpoint-configmap: the new leader
// resumes where the old one saved, and the ConfigMap's optimistic
// concurrency fences off a leader that wakes up after losing the Lease.
// --id names the replica in the Lease and the checkpoint (default
// hostname_pid); --lease-duration, --renew-deadline and --retry-period are
// the leader package's (defaults 15s, 10s, 2s). A crashed leader is
// replaced after about the lease duration plus a retry period.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/kubekit/kubekit/client"
	"github.com/kubekit/kubekit/leader"
	"github.com/kubekit/kubekit/watch"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, pflag.ErrHelp) {
		return // --help: usage was printed, exit 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "watch:", err)
		os.Exit(1)
	}
}

// flags are the command line.
type flags struct {
	resource, namespace, selector string
	checkpoint, checkpointCM      string
	leaderElect, id               string
	lease, renew, retry           time.Duration
	kube                          client.Flags
}

func parse(args []string, stderr io.Writer) (*flags, error) {
	var f flags
	fs := pflag.NewFlagSet("watch", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.resource, "resource", "configmaps", `resource to watch: plural name, group-qualified outside the core group ("pods", "deployments.apps", "widgets.example.com")`)
	fs.StringVarP(&f.namespace, "namespace", "n", "", "namespace to watch (default: all namespaces)")
	fs.StringVarP(&f.selector, "selector", "l", "", `label selector, e.g. "app=web,tier!=db"`)
	fs.StringVar(&f.checkpoint, "checkpoint", "", "file that keeps the watch's position across runs (default: none, start with a list)")
	fs.StringVar(&f.checkpointCM, "checkpoint-configmap", "", "NAMESPACE/NAME of a ConfigMap that keeps the watch's position across runs and replicas (instead of --checkpoint)")
	fs.StringVar(&f.leaderElect, "leader-elect", "", "NAMESPACE/NAME of a Lease: only the replica holding it watches and prints (default: no leader election)")
	fs.StringVar(&f.id, "id", watch.DefaultWriterIdentity(), "this replica's identity in the Lease and the checkpoint")
	fs.DurationVar(&f.lease, "lease-duration", leader.DefaultLeaseDuration, "how long a follower waits for a leader that stopped renewing (with --leader-elect)")
	fs.DurationVar(&f.renew, "renew-deadline", leader.DefaultRenewDeadline, "how long the leader tries to renew before it stops leading (with --leader-elect)")
	fs.DurationVar(&f.retry, "retry-period", leader.DefaultRetryPeriod, "time between tries to acquire or renew the Lease (with --leader-elect)")
	f.kube.BindPFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if f.resource == "" {
		errs = append(errs, errors.New(`--resource: empty (e.g. "configmaps" or "deployments.apps")`))
	}
	if f.checkpoint != "" && f.checkpointCM != "" {
		errs = append(errs, errors.New("--checkpoint and --checkpoint-configmap: give one of them"))
	}
	for _, v := range []struct{ flag, value string }{{"--checkpoint-configmap", f.checkpointCM}, {"--leader-elect", f.leaderElect}} {
		if _, _, err := splitName(v.value); v.value != "" && err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", v.flag, err))
		}
	}
	if f.leaderElect == "" {
		for _, name := range []string{"lease-duration", "renew-deadline", "retry-period"} {
			if fs.Changed(name) {
				errs = append(errs, fmt.Errorf("--%s: only with --leader-elect", name))
			}
		}
		if fs.Changed("id") && f.checkpointCM == "" {
			errs = append(errs, errors.New("--id: only with --leader-elect or --checkpoint-configmap"))
		}
	}
	return &f, errors.Join(errs...)
}

// splitName splits "NAMESPACE/NAME".
func splitName(s string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%q: want NAMESPACE/NAME, e.g. default/watch", s)
	}
	return ns, name, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parse(args, stderr)
	if err != nil {
		return err
	}
	c, err := client.New(f.kube.Options()...)
	if err != nil {
		return err
	}
	defer c.Close()
	var cp watch.Checkpoint
	switch {
	case f.checkpoint != "":
		if cp, err = watch.NewFileCheckpoint(f.checkpoint); err != nil {
			return fmt.Errorf("--checkpoint: %w", err)
		}
	case f.checkpointCM != "":
		ns, name, _ := splitName(f.checkpointCM)
		if cp, err = watch.NewConfigMapCheckpoint(c.Kubernetes(), ns, name, watch.WithWriterIdentity(f.id)); err != nil {
			return fmt.Errorf("--checkpoint-configmap: %w", err)
		}
	}
	if f.leaderElect != "" && cp != nil {
		cp = guard(cp)
	}
	opts := []watch.Option{watch.WithNamespace(f.namespace), watch.WithLabelSelector(f.selector)}
	if cp != nil {
		opts = append(opts, watch.WithCheckpoint(cp))
	}
	// Every replica checks its flags against the API server before campaigning.
	w, err := watch.NewForResource(ctx, c, schema.ParseGroupResource(f.resource).WithVersion(""), opts...)
	if err != nil {
		return err
	}
	if f.leaderElect == "" {
		return watchAndPrint(ctx, w, stdout, false)
	}
	return lead(ctx, c, f, w, stdout, stderr)
}

// watchAndPrint runs the watch until ctx is done. With elected, it runs
// inside leader.Run: nothing is printed (nor saved, see guard) once
// leader.Leading says the Lease may be another replica's.
func watchAndPrint(ctx context.Context, w *watch.Watcher[*unstructured.Unstructured], stdout io.Writer, elected bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Run returns nil on SIGINT/SIGTERM (ctx cancelled), after saving the checkpoint.
	err := w.Run(ctx, func(ctx context.Context, e watch.Event[*unstructured.Unstructured]) error {
		// "ns/name", or just "name" for cluster-scoped objects.
		line := fmt.Sprintf("%s %s %s", e.Type, cache.MetaObjectToName(e.Object), e.Object.GetResourceVersion())
		if e.Synthetic {
			line += " (resync)"
		}
		// Checked right before the write: a pause that falls between the
		// two still lets this one line out when the process wakes.
		if elected && !leader.Leading(ctx) {
			cancel() // the Lease may be another replica's by now: stop, print nothing
			return errNotRenewed
		}
		// A failed write (closed pipe) is returned so the event is retried
		// and, if it keeps failing, not checkpointed as printed.
		_, err := fmt.Fprintln(stdout, line)
		return err
	})
	if elected && !leader.Leading(ctx) {
		return errors.Join(errNotRenewed, err)
	}
	return err
}

// lead campaigns for the Lease and watches while this replica leads.
func lead(ctx context.Context, c *client.Client, f *flags, w *watch.Watcher[*unstructured.Unstructured], stdout, stderr io.Writer) error {
	ns, name, _ := splitName(f.leaderElect)
	err := leader.Run(ctx, c, ns, name, func(ctx context.Context) error {
		fmt.Fprintln(stderr, "leading as "+f.id)
		defer fmt.Fprintln(stderr, "stopped leading")
		return watchAndPrint(ctx, w, stdout, true)
	}, leader.WithIdentity(f.id), leader.WithLeaseDuration(f.lease), leader.WithRenewDeadline(f.renew), leader.WithRetryPeriod(f.retry))
	if errors.Is(err, leader.ErrLeadershipLost) || errors.Is(err, errNotRenewed) {
		return fmt.Errorf("lost the leadership of Lease %s as %s; exiting so that a supervisor restarts this replica as a follower: %w", f.leaderElect, f.id, err)
	}
	return err
}

var errNotRenewed = errors.New("the Lease was not renewed within the renew deadline (this process was paused or cut off from the API server), so another replica may lead now")

// guard returns cp with saves refused once leader.Leading says the Lease
// may be lost (the saves run with the watch's context, fn's); the ConfigMap
// checkpoint's own fence stops the rest.
func guard(cp watch.Checkpoint) watch.Checkpoint {
	g := guarded{Checkpoint: cp}
	if d, ok := cp.(watch.DeltaCheckpoint); ok {
		return guardedDelta{g, d}
	}
	return g
}

type guarded struct{ watch.Checkpoint }

func (g guarded) Save(ctx context.Context, s *watch.State) error {
	if !leader.Leading(ctx) {
		return errNotRenewed
	}
	return g.Checkpoint.Save(ctx, s)
}

func (g guarded) String() string { return fmt.Sprint(g.Checkpoint) }

type guardedDelta struct {
	guarded
	d watch.DeltaCheckpoint
}

func (g guardedDelta) SaveChanges(ctx context.Context, c *watch.Changes) error {
	if !leader.Leading(ctx) {
		return errNotRenewed
	}
	return g.d.SaveChanges(ctx, c)
}
