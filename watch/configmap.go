package watch

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
)

// ConfigMapKey is the data key under which [ConfigMapCheckpoint] stores the state.
const ConfigMapKey = "checkpoint"

// ConfigMapCheckpoint stores the state in a ConfigMap, for stateless Pods.
// Each save is one update (create on the first save), so it is atomic. A
// ConfigMap holds at most 1 MiB: about 10,000 known objects; use a file
// checkpoint on a volume for more. The identity needs get, create and update
// on configmaps in the namespace.
type ConfigMapCheckpoint struct {
	k         kubernetes.Interface
	namespace string
	name      string
}

var _ Checkpoint = (*ConfigMapCheckpoint)(nil)

// NewConfigMapCheckpoint returns a checkpoint stored in the ConfigMap
// namespace/name, created by the first save.
func NewConfigMapCheckpoint(k kubernetes.Interface, namespace, name string) (*ConfigMapCheckpoint, error) {
	if k == nil {
		return nil, errors.New("watch: NewConfigMapCheckpoint(nil, ...): pass a clientset, e.g. c.Kubernetes()")
	}
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		return nil, fmt.Errorf("watch: NewConfigMapCheckpoint: namespace %q: %s", namespace, msgs[0])
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return nil, fmt.Errorf("watch: NewConfigMapCheckpoint: name %q: %s", name, msgs[0])
	}
	return &ConfigMapCheckpoint{k: k, namespace: namespace, name: name}, nil
}

// Load reads the ConfigMap; a missing ConfigMap is (nil, nil).
func (c *ConfigMapCheckpoint) Load(ctx context.Context) (*State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cm, err := c.k.CoreV1().ConfigMaps(c.namespace).Get(ctx, c.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint ConfigMap %s/%s: %w", ErrBadCheckpoint, c.namespace, c.name, err)
	}
	data, ok := cm.Data[ConfigMapKey]
	if !ok {
		return nil, fmt.Errorf("%w: checkpoint ConfigMap %s/%s has no %q key; delete it to start with a fresh list", ErrBadCheckpoint, c.namespace, c.name, ConfigMapKey)
	}
	s, err := DecodeState([]byte(data))
	if err != nil {
		return nil, fmt.Errorf("checkpoint ConfigMap %s/%s: %w; delete it to start with a fresh list", c.namespace, c.name, err)
	}
	return s, nil
}

// String names the checkpoint in errors and logs: "ConfigMap <namespace>/<name>".
func (c *ConfigMapCheckpoint) String() string { return "ConfigMap " + c.namespace + "/" + c.name }

// maxConfigMapData is the most a ConfigMap's data may hold, keys included
// (the API server's validation).
const maxConfigMapData = 1 << 20

// Save writes s to the ConfigMap. A state over the ConfigMap's 1 MiB is an
// error matching [ErrStateTooLarge], returned before any request.
func (c *ConfigMapCheckpoint) Save(ctx context.Context, s *State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := EncodeState(s)
	if err != nil {
		return err
	}
	if n := len(ConfigMapKey) + len(b); n > maxConfigMapData {
		return fmt.Errorf("%w: checkpoint ConfigMap %s/%s: the state of %d objects is %d bytes, a ConfigMap holds at most %d; "+
			"use a FileCheckpoint on a volume, or narrow the watch (WithNamespace, WithLabelSelector)",
			ErrStateTooLarge, c.namespace, c.name, len(s.Objects), n, maxConfigMapData)
	}
	cms := c.k.CoreV1().ConfigMaps(c.namespace)
	cm, err := cms.Get(ctx, c.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: c.namespace, Name: c.name},
			Data:       map[string]string{ConfigMapKey: string(b)},
		}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
	case err == nil:
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[ConfigMapKey] = string(b)
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("watch: save checkpoint ConfigMap %s/%s (%d bytes): %w", c.namespace, c.name, len(b), err)
	}
	return nil
}
