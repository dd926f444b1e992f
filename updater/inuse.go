package updater

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// Lister lists every service and task of the swarm; *client.Client
// satisfies it.
type Lister interface {
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	TaskList(ctx context.Context, options swarm.TaskListOptions) ([]swarm.Task, error)
}

// InUse is an image the swarm needs: a service runs it, a task still
// runs it mid-update, or it is a service's previous spec, which Swarm
// rolls back to.
type InUse struct {
	Service string
	// Image is repo:tag@digest as Swarm holds it.
	Image string
	// Why is "runs", "task" or "previous spec".
	Why string
}

// Inventory reports the images every service of the swarm needs, managed
// by swarmhook or not. It is safe for concurrent use.
type Inventory struct{ c Lister }

// NewInventory returns an Inventory over c.
func NewInventory(c Lister) *Inventory { return &Inventory{c: c} }

// InUse lists the current and previous spec image of every service and
// the image of every task meant to be running.
func (i *Inventory) InUse(ctx context.Context) ([]InUse, error) {
	svcs, err := i.c.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	names := map[string]string{}
	var out []InUse
	for _, s := range svcs {
		names[s.ID] = s.Spec.Name
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil && cs.Image != "" {
			out = append(out, InUse{Service: s.Spec.Name, Image: cs.Image, Why: "runs"})
		}
		if s.PreviousSpec != nil {
			if cs := s.PreviousSpec.TaskTemplate.ContainerSpec; cs != nil && cs.Image != "" {
				out = append(out, InUse{Service: s.Spec.Name, Image: cs.Image, Why: "previous spec"})
			}
		}
	}
	tasks, err := i.c.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("desired-state", "running"))})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	for _, t := range tasks {
		if cs := t.Spec.ContainerSpec; cs != nil && cs.Image != "" {
			out = append(out, InUse{Service: names[t.ServiceID], Image: cs.Image, Why: "task"})
		}
	}
	return out, nil
}
