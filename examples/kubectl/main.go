// Command kubectl is a small kubectl for "apply -f", "delete -f", "diff -f" and "wait -f", built on
// kubekit's manifest support. It prints what real kubectl prints:
//
//	$ go run ./examples/kubectl apply -f examples/kubectl/testdata/demo
//	namespace/kubectl-demo created
//	customresourcedefinition.apiextensions.k8s.io/gadgets.demo.kubekit.dev created
//	...
//	$ go run ./examples/kubectl delete -f examples/kubectl/testdata/demo
//	namespace "kubectl-demo" deleted
//
// Differences from kubectl: apply is server-side apply (field manager
// "kubekit" unless --field-manager says otherwise) and reports
// created/configured/unchanged from the server's answers; objects are applied
// Namespaces first, then CRDs (waiting until they are served), then the rest,
// so a directory may hold a CRD and its resources. As with kubectl, delete
// uses --cascade=background unless told otherwise and waits for the objects
// to be gone (--wait, --timeout); API warnings are printed on stderr as
// "Warning: <text>".
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/kubekit/kubekit/client"
)

// errFailed means some objects failed; their errors are already printed.
var errFailed = errors.New("some objects failed")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err))
}

// exitError carries an exit status other than 1 (diff: 1 means
// "differences found", so errors exit 2, as kubectl diff's do).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode is the process's exit status for execute's error.
func exitCode(err error) int {
	var e *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e.code
	}
	return 1
}

// errDiffers means diff found differences (exit 1, no message).
var errDiffers = &exitError{code: 1, err: errors.New("differences found")}

// run is execute reading "-" from the process's stdin.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return execute(ctx, args, os.Stdin, stdout, stderr)
}

type flags struct {
	files        []string
	recursive    bool
	namespace    string
	dryRun       string
	fieldManager string
	force        bool
	cascade      string
	wait         bool
	timeout      time.Duration
	waitFor      string
	prune        bool
	applySet     string
	recreate     bool
	kube         client.Flags
}

// execute runs the command line args. Every error is printed to stderr in
// kubectl's words before it is returned.
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var f flags
	root := &cobra.Command{
		Use:           "kubectl",
		Short:         "apply and delete manifests, like kubectl, with kubekit",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f.kube.BindPFlags(root.PersistentFlags())
	root.PersistentFlags().StringVarP(&f.namespace, "namespace", "n", "", "namespace for objects that name none (default: the context's)")
	fileFlags := func(cmd *cobra.Command, verb string) {
		cmd.Flags().StringArrayVarP(&f.files, "filename", "f", nil, "file, directory or - (stdin) with the manifests to "+verb+"; repeatable")
		cmd.Flags().BoolVarP(&f.recursive, "recursive", "R", false, "also read subdirectories of directories given with -f")
		cmd.Flags().StringVar(&f.dryRun, "dry-run", "none", `"none" or "server" (the API server validates without storing)`)
	}
	apply := &cobra.Command{
		Use:   "apply -f FILENAME",
		Short: "create or update objects with server-side apply",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case f.recreate && cmd.Flags().Changed("server-side"):
				return errors.New("--force cannot be used with --server-side")
			case f.recreate && f.dryRun == "server":
				return errors.New("--dry-run=server cannot be used with --force")
			case f.recreate && f.prune:
				return errors.New("--force cannot be used with --prune")
			}
			return manifests(cmd.Context(), "apply", f, stdin, stdout, stderr)
		},
	}
	fileFlags(apply, "apply")
	apply.Flags().StringVar(&f.fieldManager, "field-manager", client.DefaultFieldManager, "name of the manager that owns the applied fields")
	apply.Flags().BoolVar(&f.force, "force-conflicts", false, "take over fields other managers own")
	apply.Flags().BoolVar(&f.prune, "prune", false, "delete the members of --applyset that are no longer in the manifests")
	apply.Flags().StringVar(&f.applySet, "applyset", "", "[secrets/|configmaps/]NAME: the ApplySet parent (in -n's namespace) that tracks the applied objects, as kubectl's")
	apply.Flags().Bool("server-side", true, "accepted for kubectl compatibility: apply is always server-side")
	apply.Flags().BoolVar(&f.recreate, "force", false, "delete and re-create an object when the apply changes an immutable field")
	del := &cobra.Command{
		Use:   "delete -f FILENAME",
		Short: "delete the objects named in manifests",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return manifests(cmd.Context(), "delete", f, stdin, stdout, stderr)
		},
	}
	fileFlags(del, "delete")
	del.Flags().StringVar(&f.cascade, "cascade", "background", `Must be "background", "orphan", or "foreground". Selects the deletion cascading strategy for the dependents (e.g. Pods created by a ReplicationController). Defaults to background.`)
	del.Flags().Lookup("cascade").NoOptDefVal = "background"
	del.Flags().BoolVar(&f.wait, "wait", true, "If true, wait for resources to be gone before returning. This waits for finalizers.")
	del.Flags().DurationVar(&f.timeout, "timeout", 0, "The length of time to wait before giving up on a delete, zero means wait forever (a week)")
	wait := &cobra.Command{
		Use:   "wait -f FILENAME --for=ready|delete|condition=NAME[=VALUE]",
		Short: "wait until the objects named in manifests are ready, deleted or have a condition",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return waitCmd(cmd.Context(), f, stdin, stdout, stderr)
		},
	}
	wait.Flags().StringArrayVarP(&f.files, "filename", "f", nil, "file, directory or - (stdin) with the manifests to wait for; repeatable")
	wait.Flags().BoolVarP(&f.recursive, "recursive", "R", false, "also read subdirectories of directories given with -f")
	wait.Flags().StringVar(&f.waitFor, "for", "", `"ready" (kstatus: Current), "delete", or "condition=NAME[=VALUE]"`)
	wait.Flags().DurationVar(&f.timeout, "timeout", 30*time.Second, "The length of time to wait before giving up")
	diff := &cobra.Command{
		Use:   "diff -f FILENAME",
		Short: "show what apply would change, as a unified diff of the live and the would-be objects",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := diffCmd(cmd.Context(), f, stdin, stdout, stderr); err != nil && err != errDiffers {
				return &exitError{code: 2, err: err}
			} else if err != nil {
				return err
			}
			return nil
		},
	}
	diff.Flags().StringArrayVarP(&f.files, "filename", "f", nil, "file, directory or - (stdin) with the manifests to diff; repeatable")
	diff.Flags().BoolVarP(&f.recursive, "recursive", "R", false, "also read subdirectories of directories given with -f")
	diff.Flags().StringVar(&f.fieldManager, "field-manager", client.DefaultFieldManager, "name of the manager that would own the applied fields")
	diff.Flags().BoolVar(&f.force, "force-conflicts", false, "take over fields other managers own in the dry run")
	diff.Flags().Bool("server-side", true, "accepted for kubectl compatibility: the diff is always server-side")
	root.AddCommand(apply, del, wait, diff)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil && !errors.Is(err, errFailed) && err != errDiffers {
		fmt.Fprintf(stderr, "error: %v\n", err)
	}
	return err
}

func manifests(ctx context.Context, verb string, f flags, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(f.files) == 0 {
		return errors.New("must specify -f (a file, a directory or - for stdin)")
	}
	// Apply and delete take different options; the ones both take go in both.
	var (
		applyOpts  []client.ApplyManifestsOption
		deleteOpts []client.DeleteManifestsOption
	)
	switch f.dryRun {
	case "none", "":
	case "server":
		applyOpts = append(applyOpts, client.DryRun(true))
		deleteOpts = append(deleteOpts, client.DryRun(true))
	case "client":
		return errors.New(`--dry-run=client is not supported: use --dry-run=server`)
	default:
		return fmt.Errorf(`invalid dry-run value (%s). Must be "none", "server", or "client"`, f.dryRun)
	}
	var set *client.ApplySet
	switch {
	case f.applySet != "" && !f.prune:
		return errors.New("--applyset requires --prune")
	case f.prune && f.applySet == "":
		return errors.New("--prune requires --applyset=[secrets/|configmaps/]NAME: kubekit prunes with ApplySets only")
	case f.prune:
		a, err := client.ParseApplySet(f.applySet, f.namespace)
		if err != nil {
			return fmt.Errorf("invalid parent reference %q: %w", f.applySet, err)
		}
		set = &a
	}
	if verb == "delete" {
		policy, err := parseCascade(f.cascade, stderr)
		if err != nil {
			return err
		}
		deleteOpts = append(deleteOpts, client.PropagationPolicy(policy))
	}
	c, err := newClient(f, stderr)
	if err != nil {
		return err
	}
	defer c.Close()

	ms, readErr := client.ReadManifests(ctx, f.files, client.Recursive(f.recursive), client.Stdin(stdin))
	if errors.Is(readErr, client.ErrNoObjects) {
		readErr = nil // reported below with kubectl's wording for the verb
	}
	// kubectl reports the errors it meets while reading and mapping
	// objects first, then the API errors, each group in input order. Plain
	// errors get an "error: " prefix only when alone.
	var (
		early  []string
		failed []string
	)
	if readErr != nil {
		for _, e := range flatten(readErr) {
			early = append(early, e.Error())
		}
	}
	if f.namespace != "" {
		applyOpts = append(applyOpts, client.InNamespace(f.namespace))
		deleteOpts = append(deleteOpts, client.InNamespace(f.namespace))
		kept := ms[:0]
		for _, m := range ms {
			if ns := m.Object.GetNamespace(); ns != "" && ns != f.namespace {
				early = append(early, fmt.Sprintf("the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation.", ns, f.namespace, ns))
				continue
			}
			kept = append(kept, m)
		}
		ms = kept
	}
	if len(ms) == 0 && len(early) == 0 {
		return fmt.Errorf("no objects passed to %s", verb)
	}

	var results, pruned []client.ManifestResult
	switch {
	case verb == "apply" && set != nil:
		applyOpts = append(applyOpts, client.FieldManager(f.fieldManager), client.ForceOwnership(f.force), client.FieldValidation("Strict"))
		results, pruned, err = c.ApplyAndPrune(ctx, *set, ms, applyOpts...)
		results = append(results, pruned...)
	case verb == "apply":
		applyOpts = append(applyOpts, client.FieldManager(f.fieldManager), client.ForceOwnership(f.force), client.FieldValidation("Strict"), client.Recreate(f.recreate))
		results, err = c.ApplyManifests(ctx, ms, applyOpts...)
	default:
		results, err = c.DeleteManifests(ctx, ms, deleteOpts...)
	}
	if err != nil && results == nil {
		return err
	}
	suffix := ""
	if f.dryRun == "server" {
		suffix = " (server dry run)"
	}
	var apiErrs []error
	for _, r := range results {
		if r.Err != nil && meta.IsNoMatchError(r.Err) {
			early = append(early, fmt.Sprintf("resource mapping not found for name: %q namespace: %q from %q: %v\nensure CRDs are installed first",
				r.Object.GetName(), r.Object.GetNamespace(), r.Source, noMatch(r.Err)))
			continue
		}
		if r.Err != nil {
			apiErrs = append(apiErrs, r.Err)
			failed = append(failed, errorLine(verb, r))
			continue
		}
		if r.Outcome == client.Deleted {
			kind, name, _ := strings.Cut(r.Name(), "/")
			fmt.Fprintf(stdout, "%s %q deleted%s\n", kind, name, suffix)
		} else {
			fmt.Fprintf(stdout, "%s %s%s\n", r.Name(), r.Outcome, suffix)
		}
	}
	failed = append(early, failed...)
	switch {
	case len(failed) == 0 && verb == "delete" && f.wait && f.dryRun != "server":
		return waitDeleted(ctx, c, results, f.timeout)
	case len(failed) == 0:
		return nil
	case len(failed) == 1 && len(early) == 1:
		failed[0] = "error: " + failed[0]
	}
	// kubectl prints a lone Invalid error as "The Kind "name" is invalid: ...".
	if len(failed) == 1 && len(apiErrs) == 1 {
		if line, ok := invalidLine(apiErrs[0]); ok {
			failed[0] = line
		}
	}
	for _, line := range failed {
		fmt.Fprintln(stderr, line)
	}
	return errFailed
}

// errorLine formats one object's API error as kubectl does.
func errorLine(verb string, r client.ManifestResult) string {
	var status apierrors.APIStatus
	if !errors.As(r.Err, &status) {
		return r.Err.Error()
	}
	st := status.Status()
	action := "deleting"
	if verb == "apply" {
		action = "creating"
		if r.Existed {
			action = "patching"
		}
	}
	msg := fmt.Sprintf("error when %s %q: %s", action, r.Source, st.Message)
	if st.Reason == "" {
		return "Error from server: " + msg
	}
	return fmt.Sprintf("Error from server (%s): %s", st.Reason, msg)
}

// noMatch returns the innermost no-match error, without kubekit's wrapping.
func noMatch(err error) error {
	var nk *meta.NoKindMatchError
	if errors.As(err, &nk) {
		return nk
	}
	return err
}

// invalidLine is kubectl's message for a single Invalid error.
func invalidLine(err error) (string, bool) {
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) {
		return "", false
	}
	d := status.Status().Details
	if d == nil {
		return "The request is invalid", true
	}
	s := "The request is invalid"
	if d.Kind != "" || d.Name != "" {
		s = fmt.Sprintf("The %s %q is invalid", d.Kind, d.Name)
	}
	switch len(d.Causes) {
	case 0:
		return s, true
	case 1:
		return s + ": " + d.Causes[0].Field + ": " + d.Causes[0].Message, true
	}
	var b strings.Builder
	b.WriteString(s + ": \n")
	for _, c := range d.Causes {
		fmt.Fprintf(&b, "* %s: %s\n", c.Field, c.Message)
	}
	return strings.TrimSuffix(b.String(), "\n"), true
}

// flatten splits errors.Join trees into their leaves.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// newClient builds the client; API warnings go to stderr as kubectl prints
// them ("Warning: <text>"), each once.
func newClient(f flags, stderr io.Writer) (*client.Client, error) {
	w := rest.NewWarningWriter(stderr, rest.WarningWriterOptions{Deduplicate: true})
	return client.New(append(f.kube.Options(), client.WithWarningHandler(client.WarningWriter(w)))...)
}

// parseCascade reads --cascade as kubectl does, booleans included.
func parseCascade(v string, stderr io.Writer) (metav1.DeletionPropagation, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		switch v {
		case "orphan":
			return metav1.DeletePropagationOrphan, nil
		case "foreground":
			return metav1.DeletePropagationForeground, nil
		case "background":
			return metav1.DeletePropagationBackground, nil
		}
		return "", fmt.Errorf(`invalid cascade value (%v). Must be "background", "foreground", or "orphan"`, v)
	}
	if b {
		fmt.Fprintf(stderr, "warning: --cascade=%v is deprecated (boolean value) and can be replaced with --cascade=%s.\n", v, "background")
		return metav1.DeletePropagationBackground, nil
	}
	fmt.Fprintf(stderr, "warning: --cascade=%v is deprecated (boolean value) and can be replaced with --cascade=%s.\n", v, "orphan")
	return metav1.DeletePropagationOrphan, nil
}

// waitDeleted waits, as kubectl delete --wait does, until the deleted
// objects are gone (timeout 0: a week). Like kubectl it names the first
// object still there on timeout, and does not fail when waiting is forbidden.
func waitDeleted(ctx context.Context, c *client.Client, results []client.ManifestResult, timeout time.Duration) error {
	if timeout == 0 {
		timeout = 168 * time.Hour
	}
	var objs []client.Object
	for _, r := range results {
		objs = append(objs, r.Object)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := c.Wait(ctx, objs, client.ForDeleted())
	var werr *client.WaitError
	switch {
	case err == nil, apierrors.IsForbidden(err), apierrors.IsMethodNotSupported(err):
		return nil
	case errors.As(err, &werr) && errors.Is(werr.Err, context.DeadlineExceeded) && len(werr.Pending) > 0:
		p := werr.Pending[0]
		return fmt.Errorf("timed out waiting for the condition on %s/%s", p.Resource.Resource, p.Object.GetName())
	}
	return err
}

// waitCmd is "wait": like kubectl wait, with --for=ready for kstatus
// readiness. It prints a line per object as its status changes (ready) or
// when its condition is met (delete, condition=), and fails naming the
// objects that timed out or Failed.
func waitCmd(ctx context.Context, f flags, stdin io.Reader, stdout, stderr io.Writer) error {
	var cond client.Condition
	switch {
	case f.waitFor == "ready":
		cond = client.ForReady()
	case f.waitFor == "delete":
		cond = client.ForDeleted()
	case strings.HasPrefix(f.waitFor, "condition="):
		cond = client.ForCondition(strings.TrimPrefix(f.waitFor, "condition="))
	case f.waitFor == "":
		return errors.New("--for must be given: ready, delete or condition=NAME[=VALUE]")
	default:
		return fmt.Errorf("unrecognized condition: %q (use ready, delete or condition=NAME[=VALUE])", f.waitFor)
	}
	if len(f.files) == 0 {
		return errors.New("must specify -f (a file, a directory or - for stdin)")
	}
	if f.timeout < 0 {
		return fmt.Errorf("--timeout=%v: must not be negative", f.timeout)
	}
	ms, err := client.ReadManifests(ctx, f.files, client.Recursive(f.recursive), client.Stdin(stdin))
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		return errors.New("no matching resources found")
	}
	c, err := newClient(f, stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	objs := make([]client.Object, len(ms))
	for i, m := range ms {
		objs[i] = m.Object
	}
	opts := []client.WaitOption{client.OnStatus(func(r client.WaitResult) {
		switch {
		case f.waitFor == "ready" && r.Message != "":
			fmt.Fprintf(stdout, "%s %s: %s\n", r.Name, r.Status, r.Message)
		case f.waitFor == "ready":
			fmt.Fprintf(stdout, "%s %s\n", r.Name, r.Status)
		case r.Done:
			fmt.Fprintf(stdout, "%s condition met\n", r.Name)
		}
	})}
	if f.namespace != "" {
		opts = append(opts, client.InNamespace(f.namespace))
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	_, err = c.Wait(ctx, objs, cond, opts...)
	var werr *client.WaitError
	var status apierrors.APIStatus
	switch {
	case err == nil:
		return nil
	case errors.As(err, &status) && status.Status().Reason != "":
		fmt.Fprintf(stderr, "Error from server (%s): %s\n", status.Status().Reason, status.Status().Message)
		return errFailed
	case !errors.As(err, &werr), werr.Err != nil && !errors.Is(werr.Err, context.DeadlineExceeded):
		return err
	}
	for _, r := range werr.Failed {
		fmt.Fprintf(stderr, "error: %s failed: %s\n", r.Name, r.Message)
	}
	if werr.Err != nil {
		var names []string
		for _, r := range werr.Pending {
			names = append(names, r.Resource.Resource+"/"+r.Object.GetName())
		}
		fmt.Fprintf(stderr, "error: timed out waiting for the condition on %s\n", strings.Join(names, ", "))
	}
	return errFailed
}

// diffCmd is "diff": kubectl diff's output (what "diff -u -N" prints for its
// LIVE-* and MERGED-* temporary directories, one file per object named
// group.version.Kind.namespace.name, in file name order) from a server-side
// dry-run apply. It returns errDiffers when something would change.
func diffCmd(ctx context.Context, f flags, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(f.files) == 0 {
		return errors.New("must specify -f (a file, a directory or - for stdin)")
	}
	ms, err := client.ReadManifests(ctx, f.files, client.Recursive(f.recursive), client.Stdin(stdin))
	if err != nil {
		return err
	}
	c, err := newClient(f, stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	opts := []client.DiffOption{client.FieldManager(f.fieldManager), client.ForceOwnership(f.force), client.FieldValidation("Strict")}
	if f.namespace != "" {
		opts = append(opts, client.InNamespace(f.namespace))
	}
	results, err := c.Diff(ctx, ms, opts...)
	if err != nil {
		// kubectl diff stops at the first failing object.
		err = flatten(err)[0]
		if line, ok := invalidLine(err); ok {
			fmt.Fprintln(stderr, line)
			return errFailed
		}
		var status apierrors.APIStatus
		if errors.As(err, &status) && status.Status().Reason != "" {
			fmt.Fprintf(stderr, "Error from server (%s): %s\n", status.Status().Reason, status.Status().Message)
			return errFailed
		}
		return err
	}
	live := filepath.Join(os.TempDir(), fmt.Sprintf("LIVE-%d", rand.Uint32()))
	merged := filepath.Join(os.TempDir(), fmt.Sprintf("MERGED-%d", rand.Uint32()))
	now := time.Now().Format("2006-01-02 15:04:05.000000000 -0700")
	epoch := time.Unix(0, 0).Format("2006-01-02 15:04:05.000000000 -0700")
	slices.SortStableFunc(results, func(a, b client.DiffResult) int { return strings.Compare(diffName(a), diffName(b)) })
	differs := false
	for _, r := range results {
		if !r.Changed() {
			continue
		}
		differs = true
		name := diffName(r)
		from, to := filepath.Join(live, name), filepath.Join(merged, name)
		fromDate := now
		if r.Live == nil {
			fromDate = epoch
		}
		fmt.Fprintf(stdout, "diff -u -N %s %s\n", from, to)
		fmt.Fprint(stdout, r.Unified(from, fromDate, to, now))
	}
	if differs {
		return errDiffers
	}
	return nil
}

// diffName is kubectl diff's file name for an object.
func diffName(r client.DiffResult) string {
	gvk := r.Object.GroupVersionKind()
	name := fmt.Sprintf("%s.%s.%s.%s", gvk.Version, gvk.Kind, r.Object.GetNamespace(), r.Object.GetName())
	if gvk.Group != "" {
		name = gvk.Group + "." + name
	}
	return name
}
