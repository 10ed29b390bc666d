// Package leader runs a function only while this process holds a Lease:
// leader election for the replicas of one Deployment, on client-go's
// tools/leaderelection with a coordination.k8s.io/v1 Lease lock.
//
//	err := leader.Run(ctx, c, "my-ns", "my-controller", func(ctx context.Context) error {
//		return work(ctx) // ctx is cancelled as soon as leadership is lost
//	})
//
// [Run] campaigns until it acquires the Lease, runs fn, renews the Lease every
// retry period and cancels fn's context as soon as it reads another holder in
// the Lease, or when the last successful renewal is older than the renew
// deadline, which is before the Lease expires for the other candidates (the
// renew deadline is shorter than the lease duration; [Run] checks it). On a
// clean stop (ctx cancelled, or fn returned) the Lease is released at once, so
// another replica takes over after one retry period instead of a whole lease
// duration. A leader that lost the Lease returns [ErrLeadershipLost]: the
// usual answer is to exit and let the supervisor restart the process as a
// candidate, because state built while leading may be stale.
//
// Two patterns cover most programs:
//
//   - The whole program leads: everything it does happens inside fn (a
//     resumable watch that prints or forwards events, a batch job). The
//     followers wait, idle, and one of them takes over when the leader stops
//     or dies. See the Run example.
//   - Caches warm on every replica, only the leader writes: informers start
//     and sync before the campaign, so a new leader reconciles from a warm
//     cache at once; only the queue's workers run inside fn. See the
//     informer-and-queue example.
//
// Leader election is not fencing: between the moment a leader stops renewing
// and the moment fn notices its cancelled context, fn may still write.
// [Leading] narrows that to nothing for actions fn checks it before (it
// asks the clock, not the API server). Writes that must never come from two
// replicas still need their own fence (optimistic concurrency on a
// resourceVersion, as the watch package's ConfigMap checkpoint does).
//
// RBAC: the client needs get, create and update on leases.coordination.k8s.io
// in the Lease's namespace. A Forbidden answer ends Run at once with
// [ErrForbidden] naming those verbs, where client-go alone would retry it
// forever.
//
// Logging goes to [WithLogger], default klog.Background() (which
// logging.RouteKlog captures), with the Lease and the identity as keys.
package leader
