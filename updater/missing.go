package updater

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/swarm"
)

// NoServiceError means a service named in the config does not exist in
// the swarm.
type NoServiceError struct {
	Service string
}

func (e *NoServiceError) Error() string {
	return "service " + e.Service + " does not exist"
}

// inspect reads service by its name or full ID. The engine also answers
// for any unique prefix of a service's ID: a name that matches only that
// way is a service that does not exist, never a stranger to update.
func (u *Updater) inspect(ctx context.Context, service string) (swarm.Service, error) {
	svc, _, err := u.c.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return swarm.Service{}, &NoServiceError{Service: service}
	case err != nil:
		return swarm.Service{}, fmt.Errorf("inspect service %s: %w", service, err)
	case svc.Spec.Name != service && svc.ID != service:
		return swarm.Service{}, &NoServiceError{Service: service}
	}
	return svc, nil
}

// Missing returns the names, of those given, that no service of the
// swarm has (by name or full ID), each once and in the order given.
func (i *Inventory) Missing(ctx context.Context, names []string) ([]string, error) {
	svcs, err := i.c.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	exists := map[string]bool{}
	for _, s := range svcs {
		exists[s.Spec.Name], exists[s.ID] = true, true
	}
	var out []string
	for _, n := range names {
		if !exists[n] {
			out = append(out, n)
			exists[n] = true // once each
		}
	}
	return out, nil
}
