// Command crud walks through the tutorial's create, read, update, delete and
// patch calls on a Namespace, a ConfigMap and a Deployment, each through
// kubekit's client, and prints one line per step:
//
//	$ go run ./examples/crud --kubeconfig .kube.config
//	Namespace.List: ok (5 items)
//	Namespace.Create crud-demo: ok
//	Namespace.Get crud-demo: ok
//	Namespace.Update crud-demo: ok
//	Namespace.Patch(json) crud-demo: ok
//	Namespace.Patch(merge) crud-demo: ok
//	Namespace.Apply crud-demo: ok (configured)
//	ConfigMap.Create settings: ok
//	...
//	Deployment.Patch(strategic) web: ok
//	Deployment.Apply web: ok (configured)
//	Deployment.Delete web: ok
//	ConfigMap.Delete settings: ok
//	Namespace.Delete crud-demo: ok
//
// Every step checks what the API server answered (a patched label really has
// the new value, a strategic merge patch kept the other container...), so
// "ok" means the write did what the step says. The first step that fails
// ends the program: it deletes what it created (also with --keep), prints
// "crud: <step>: <error>" on stderr and exits 1.
//
// --namespace names the Namespace the program creates (default "crud-demo");
// it must not exist yet. On a control plane without kube-controller-manager
// (make cluster) a deleted Namespace stays Terminating, so run it again with
// another --namespace.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/kubekit/kubekit/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, pflag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crud:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("crud", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: crud [flags]\n\nCreates, reads, updates, patches (JSON, merge, strategic merge), applies and deletes\na Namespace, a ConfigMap and a Deployment, one line per step, then cleans up.\n\nFlags:\n%s", fs.FlagUsages())
	}
	ns := fs.StringP("namespace", "n", "crud-demo", "name of the Namespace to create and work in; it must not exist yet")
	keep := fs.Bool("keep", false, "leave the objects in place at the end instead of deleting them (to look at them with kubectl)")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long (0 = no limit)")
	var kf client.Flags
	kf.BindPFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if errs := validation.IsDNS1123Label(*ns); len(errs) > 0 {
		return fmt.Errorf("--namespace=%q: not a valid Namespace name: %s", *ns, errs[0])
	}
	if *timeout < 0 {
		return fmt.Errorf("--timeout=%v: must be >= 0", *timeout)
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	c, err := client.New(kf.Options()...)
	if err != nil {
		return err
	}
	defer c.Close()
	w := &walk{c: c, out: stdout, ns: *ns, keep: *keep}
	err = w.all(ctx)
	if err != nil {
		// Clean up with a fresh deadline: ctx may be what ended the walk.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if cerr := w.cleanup(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}
	return err
}

// walk runs the steps in order and remembers what it created, so a failure
// can delete it again.
type walk struct {
	c       *client.Client
	out     io.Writer
	ns      string
	keep    bool
	created []client.Object
}

// do runs fn and prints "<name>: ok[ (detail)]"; an error names the step.
func (w *walk) do(name string, fn func() (string, error)) error {
	detail, err := fn()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if detail != "" {
		detail = " (" + detail + ")"
	}
	_, err = fmt.Fprintf(w.out, "%s: ok%s\n", name, detail)
	return err
}

// check returns an error saying what the server's answer got wrong.
func check(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf("the API server's answer is wrong: "+format, args...)
}

// step is one call of the walk: its name as printed and what it does; fn
// returns a detail for the line ("5 items", "configured") or an error.
type step struct {
	name string
	fn   func() (string, error)
}

func (w *walk) all(ctx context.Context) error {
	for _, steps := range [][]step{w.namespace(ctx), w.configMap(ctx), w.deployment(ctx)} {
		for _, s := range steps {
			if err := w.do(s.name, s.fn); err != nil {
				return err
			}
		}
	}
	if w.keep {
		w.created = nil
		return nil
	}
	return w.deleteAll(ctx)
}

func (w *walk) namespace(ctx context.Context) []step {
	c, name := w.c, w.ns
	return []step{
		{"Namespace.List", func() (string, error) {
			n := 0
			for _, err := range client.List[*corev1.Namespace](ctx, c.Kubernetes().CoreV1().Namespaces().List) {
				if err != nil {
					return "", err
				}
				n++
			}
			return fmt.Sprintf("%d items", n), nil
		}},
		{"Namespace.Create " + name, func() (string, error) {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
			if err := c.Create(ctx, ns); err != nil {
				return "", err
			}
			w.created = append(w.created, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
			return "", check(ns.UID != "", "no uid")
		}},
		{"Namespace.Get " + name, func() (string, error) {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
			if err := c.Get(ctx, ns); err != nil {
				return "", err
			}
			return "", check(ns.Status.Phase == corev1.NamespaceActive, "phase %q, want Active", ns.Status.Phase)
		}},
		{"Namespace.Update " + name, func() (string, error) {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
			err := w.update(ctx, ns, func() {
				if ns.Labels == nil {
					ns.Labels = map[string]string{}
				}
				ns.Labels["a"] = "b"
			})
			if err != nil {
				return "", err
			}
			return "", check(ns.Labels["a"] == "b", "label a=%q, want b", ns.Labels["a"])
		}},
		{"Namespace.Patch(json) " + name, func() (string, error) {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
			p := client.JSONPatch([]byte(`[{"op":"test","path":"/metadata/labels/a","value":"b"},{"op":"add","path":"/metadata/labels/a","value":"c"}]`))
			if err := c.Patch(ctx, ns, p); err != nil {
				return "", err
			}
			return "", check(ns.Labels["a"] == "c", "label a=%q, want c", ns.Labels["a"])
		}},
		{"Namespace.Patch(merge) " + name, func() (string, error) {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
			if err := c.Patch(ctx, ns, client.MergePatch([]byte(`{"metadata":{"labels":{"a":"f"}}}`))); err != nil {
				return "", err
			}
			return "", check(ns.Labels["a"] == "f", "label a=%q, want f", ns.Labels["a"])
		}},
		{"Namespace.Apply " + name, func() (string, error) {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"applied": "true"}}}
			outcome, err := c.Apply(ctx, ns)
			if err != nil {
				return "", err
			}
			return string(outcome), check(ns.Labels["applied"] == "true" && ns.Labels["a"] == "f",
				"labels %v, want applied=true and a=f kept", ns.Labels)
		}},
	}
}

const cmName = "settings"

func (w *walk) configMap(ctx context.Context) []step {
	c, ns := w.c, w.ns
	key := func() *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cmName}}
	}
	data := func(cm *corev1.ConfigMap, want map[string]string) error {
		return check(maps.Equal(cm.Data, want), "data %v, want %v", cm.Data, want)
	}
	return []step{
		{"ConfigMap.Create " + cmName, func() (string, error) {
			cm := key()
			cm.Labels = map[string]string{"app": "crud"}
			cm.Data = map[string]string{"greeting": "hello"}
			if err := c.Create(ctx, cm); err != nil {
				return "", err
			}
			w.created = append(w.created, key())
			return "", data(cm, map[string]string{"greeting": "hello"})
		}},
		{"ConfigMap.Get " + cmName, func() (string, error) {
			cm := key()
			if err := c.Get(ctx, cm); err != nil {
				return "", err
			}
			return "", data(cm, map[string]string{"greeting": "hello"})
		}},
		{"ConfigMap.List " + ns, func() (string, error) {
			items, err := client.Collect[*corev1.ConfigMap](ctx, c.Kubernetes().CoreV1().ConfigMaps(ns).List, client.LabelSelector("app=crud"))
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d items", len(items)), check(len(items) == 1 && items[0].Name == cmName, "%d items, want %s only", len(items), cmName)
		}},
		{"ConfigMap.Update " + cmName, func() (string, error) {
			cm := key()
			if err := w.update(ctx, cm, func() { cm.Data["greeting"] = "hi" }); err != nil {
				return "", err
			}
			return "", data(cm, map[string]string{"greeting": "hi"})
		}},
		{"ConfigMap.Patch(json) " + cmName, func() (string, error) {
			cm := key()
			p := client.JSONPatch([]byte(`[{"op":"replace","path":"/data/greeting","value":"hallo"},{"op":"add","path":"/data/lang","value":"de"}]`))
			if err := c.Patch(ctx, cm, p); err != nil {
				return "", err
			}
			return "", data(cm, map[string]string{"greeting": "hallo", "lang": "de"})
		}},
		{"ConfigMap.Patch(merge) " + cmName, func() (string, error) {
			cm := key()
			// null deletes a key in a merge patch
			if err := c.Patch(ctx, cm, client.MergePatch([]byte(`{"data":{"greeting":"bonjour","lang":null}}`))); err != nil {
				return "", err
			}
			return "", data(cm, map[string]string{"greeting": "bonjour"})
		}},
		{"ConfigMap.Patch(strategic) " + cmName, func() (string, error) {
			cm := key()
			if err := c.Patch(ctx, cm, client.StrategicMergePatch([]byte(`{"data":{"lang":"fr"}}`))); err != nil {
				return "", err
			}
			return "", data(cm, map[string]string{"greeting": "bonjour", "lang": "fr"})
		}},
		{"ConfigMap.Apply " + cmName, func() (string, error) {
			cm := key()
			cm.Data = map[string]string{"greeting": "ciao"}
			// the greeting is owned by the Update and Patch calls' manager:
			// take it over, like kubectl apply --server-side --force-conflicts
			outcome, err := c.Apply(ctx, cm, client.ForceOwnership(true))
			if err != nil {
				return "", err
			}
			return string(outcome), data(cm, map[string]string{"greeting": "ciao", "lang": "fr"})
		}},
	}
}

const deployName = "web"

func (w *walk) deployment(ctx context.Context) []step {
	c, ns := w.c, w.ns
	key := func() *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: deployName}}
	}
	containers := func(d *appsv1.Deployment) map[string]string {
		m := map[string]string{}
		for _, ct := range d.Spec.Template.Spec.Containers {
			m[ct.Name] = ct.Image
		}
		return m
	}
	state := func(d *appsv1.Deployment, replicas int32, images map[string]string) error {
		return check(d.Spec.Replicas != nil && *d.Spec.Replicas == replicas && maps.Equal(containers(d), images),
			"replicas %v, containers %v; want %d, %v", ptr.Deref(d.Spec.Replicas, -1), containers(d), replicas, images)
	}
	labels := map[string]string{"app": deployName}
	return []step{
		{"Deployment.Create " + deployName, func() (string, error) {
			d := key()
			d.Spec = appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](1),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{
						{Name: "web", Image: "nginx:1.27"},
						{Name: "sidecar", Image: "busybox:1.37"},
					}},
				},
			}
			if err := c.Create(ctx, d); err != nil {
				return "", err
			}
			w.created = append(w.created, key())
			return "", state(d, 1, map[string]string{"web": "nginx:1.27", "sidecar": "busybox:1.37"})
		}},
		{"Deployment.Get " + deployName, func() (string, error) {
			d := key()
			if err := c.Get(ctx, d); err != nil {
				return "", err
			}
			return "", state(d, 1, map[string]string{"web": "nginx:1.27", "sidecar": "busybox:1.37"})
		}},
		{"Deployment.List " + ns, func() (string, error) {
			items, err := client.Collect[*appsv1.Deployment](ctx, c.Kubernetes().AppsV1().Deployments(ns).List)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%d items", len(items)), check(len(items) == 1 && items[0].Name == deployName, "%d items, want %s only", len(items), deployName)
		}},
		{"Deployment.Update " + deployName, func() (string, error) {
			d := key()
			if err := w.update(ctx, d, func() { d.Spec.Replicas = ptr.To[int32](2) }); err != nil {
				return "", err
			}
			return "", state(d, 2, map[string]string{"web": "nginx:1.27", "sidecar": "busybox:1.37"})
		}},
		{"Deployment.Patch(json) " + deployName, func() (string, error) {
			d := key()
			p := client.JSONPatch([]byte(`[{"op":"test","path":"/spec/template/spec/containers/1/name","value":"sidecar"},{"op":"replace","path":"/spec/template/spec/containers/1/image","value":"busybox:1.36"}]`))
			if err := c.Patch(ctx, d, p); err != nil {
				return "", err
			}
			return "", state(d, 2, map[string]string{"web": "nginx:1.27", "sidecar": "busybox:1.36"})
		}},
		{"Deployment.Patch(merge) " + deployName, func() (string, error) {
			d := key()
			if err := c.Patch(ctx, d, client.MergePatch([]byte(`{"spec":{"replicas":3}}`))); err != nil {
				return "", err
			}
			return "", state(d, 3, map[string]string{"web": "nginx:1.27", "sidecar": "busybox:1.36"})
		}},
		{"Deployment.Patch(strategic) " + deployName, func() (string, error) {
			d := key()
			// containers merge by name: only "web" changes, "sidecar" stays
			// (a merge patch would replace the whole list)
			p := client.StrategicMergePatch([]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}`))
			if err := c.Patch(ctx, d, p); err != nil {
				return "", err
			}
			return "", state(d, 3, map[string]string{"web": "nginx:1.28", "sidecar": "busybox:1.36"})
		}},
		{"Deployment.Apply " + deployName, func() (string, error) {
			d := key()
			d.Spec = appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](4),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.28"}}},
				},
			}
			// replicas is owned by the Patch calls' manager: take it over
			outcome, err := c.Apply(ctx, d, client.ForceOwnership(true))
			if err != nil {
				return "", err
			}
			// the apply names only "web"; "sidecar" belongs to the Create and stays
			return string(outcome), state(d, 4, map[string]string{"web": "nginx:1.28", "sidecar": "busybox:1.36"})
		}},
	}
}

// update reads obj, lets change modify it and writes it back, as the
// tutorial's Update does, retrying when another writer (a controller updating
// status) moved the resourceVersion between the Get and the Update.
func (w *walk) update(ctx context.Context, obj client.Object, change func()) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := w.c.Get(ctx, obj); err != nil {
			return err
		}
		change()
		return w.c.Update(ctx, obj)
	})
}

// deleteAll deletes what the walk created, newest first, printing a step line
// for each.
func (w *walk) deleteAll(ctx context.Context) error {
	for len(w.created) > 0 {
		obj := w.created[len(w.created)-1]
		gvk, err := client.GVKFor(obj)
		if err != nil {
			return err
		}
		if err := w.do(gvk.Kind+".Delete "+obj.GetName(), func() (string, error) { return "", w.delete(ctx, obj) }); err != nil {
			return err
		}
		w.created = w.created[:len(w.created)-1]
	}
	return nil
}

// cleanup deletes what is left after a failed step, without step lines.
func (w *walk) cleanup(ctx context.Context) error {
	var errs []error
	for _, obj := range slices.Backward(w.created) {
		if err := w.delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	w.created = nil
	return errors.Join(errs...)
}

// delete deletes obj and checks that it is gone, or for a Namespace that it
// is being deleted (its content is removed by kube-controller-manager's
// namespace controller, which a bare control plane does not run).
func (w *walk) delete(ctx context.Context, obj client.Object) error {
	if err := w.c.Delete(ctx, obj); err != nil {
		return err
	}
	after := obj.DeepCopyObject().(client.Object)
	err := w.c.Get(ctx, after)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	}
	_, isNS := obj.(*corev1.Namespace)
	return check(isNS && after.GetDeletionTimestamp() != nil, "%s still exists after Delete", obj.GetName())
}
