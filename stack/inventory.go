package stack

import (
	"context"
	"fmt"
	"slices"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// ServiceLister lists services; *client.Client satisfies it.
type ServiceLister interface {
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
}

// Inventory says which services run in a stack. It is safe for
// concurrent use.
type Inventory struct{ c ServiceLister }

// NewInventory returns an Inventory over c.
func NewInventory(c ServiceLister) *Inventory { return &Inventory{c: c} }

// Services returns the names of the services labelled as stack name's,
// as docker stack services lists them (those a plan updates or keeps),
// sorted.
func (i *Inventory) Services(ctx context.Context, name string) ([]string, error) {
	f := filters.NewArgs(filters.Arg("label", NamespaceLabel+"="+name))
	svcs, err := i.c.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list the services of stack %s: %w", name, err)
	}
	names := make([]string, len(svcs))
	for j, s := range svcs {
		names[j] = s.Spec.Name
	}
	slices.Sort(names)
	return names, nil
}
