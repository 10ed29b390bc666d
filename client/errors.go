package client

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// IgnoreNotFound returns nil for a NotFound API error (wrapped or not) and err
// otherwise, for deletes and gets where "already gone" is fine:
//
//	if err := c.Delete(ctx, cm); client.IgnoreNotFound(err) != nil {
//		return err
//	}
func IgnoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// IgnoreAlreadyExists returns nil for an AlreadyExists API error (wrapped or
// not) and err otherwise, for creates that may race with another creator.
func IgnoreAlreadyExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}
