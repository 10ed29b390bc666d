package testenv

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func (o *options) validate() error {
	var errs []error
	if o.startTimeout <= 0 {
		errs = append(errs, fmt.Errorf("testenv: WithStartTimeout(%s): must be positive", o.startTimeout))
	}
	if o.stopGrace < 0 {
		errs = append(errs, fmt.Errorf("testenv: WithStopGrace(%s): must not be negative", o.stopGrace))
	}
	seen := map[string]bool{}
	for i, u := range o.users {
		switch {
		case u.Name == "":
			errs = append(errs, fmt.Errorf("testenv: WithUsers: user %d has no Name", i))
		case strings.ContainsAny(u.Name, "/:") || u.Name != strings.TrimSpace(u.Name):
			errs = append(errs, fmt.Errorf("testenv: WithUsers: user name %q must not contain '/', ':' or surrounding spaces", u.Name))
		case seen[u.Name]:
			errs = append(errs, fmt.Errorf("testenv: WithUsers: user %q given twice", u.Name))
		case u.Name == adminUser:
			errs = append(errs, fmt.Errorf("testenv: WithUsers: %q is the admin user's name; choose another", u.Name))
		}
		seen[u.Name] = true
		for _, g := range u.Groups {
			if g == "system:masters" {
				errs = append(errs, fmt.Errorf("testenv: WithUsers: user %q in group system:masters would bypass RBAC; use Env.Config for admin access", u.Name))
			}
		}
	}
	return errors.Join(errs...)
}

const adminUser = "kubekit-admin"

// setUp installs what the options ask for once the API server is ready.
func (e *Env) setUp(ctx context.Context) error {
	if len(e.opts.crds) > 0 {
		if err := e.InstallCRDs(ctx, e.opts.crds...); err != nil {
			return fmt.Errorf("testenv: WithCRDs: %w", err)
		}
	}
	if len(e.opts.crdFiles) > 0 {
		if err := e.InstallCRDFiles(ctx, e.opts.crdFiles...); err != nil {
			return fmt.Errorf("testenv: WithCRDFiles: %w", err)
		}
	}
	if len(e.opts.users) == 0 {
		return nil
	}
	cs, err := kubernetes.NewForConfig(e.Config())
	if err != nil {
		return err
	}
	for _, u := range e.opts.users {
		name := "testenv:" + u.Name
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: u.Rules}
		if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("testenv: WithUsers: create ClusterRole %s: %w", name, err)
		}
		binding := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: u.Name}},
		}
		if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("testenv: WithUsers: create ClusterRoleBinding %s: %w", name, err)
		}
	}
	return nil
}

// UserKubeconfigPath writes a kubeconfig file that authenticates as user
// (member of groups) with a client certificate and returns its path in the
// Env's directory. For the users of [WithUsers] pass their Groups as well.
func (e *Env) UserKubeconfigPath(user string, groups ...string) (string, error) {
	cfg, err := e.UserConfig(user, groups...)
	if err != nil {
		return "", err
	}
	path := filepath.Join(e.dir, "kubeconfig-"+strings.NewReplacer("/", "_", ":", "_").Replace(user))
	if err := WriteKubeconfig(cfg, path); err != nil {
		return "", err
	}
	return path, nil
}
