package updater

import (
	"cmp"
	"context"
	"fmt"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/swarmhook/swarmhook/imageref"
)

// Status is what a service runs now, as Swarm reports it.
type Status struct {
	Name string `json:"name"`
	// Image is the spec's image, repo:tag@digest.
	Image  string `json:"image"`
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
	// Running and Desired count tasks; Desired is 0 for global services
	// until their tasks are placed.
	Running uint64 `json:"running"`
	Desired uint64 `json:"desired"`
	// UpdateState is Swarm's update state, empty when none ran.
	UpdateState string `json:"update_state,omitempty"`
	// Previous is the image of Swarm's rollback target, if any.
	Previous string `json:"previous_image,omitempty"`
	// Tasks are the tasks Swarm wants running, per node.
	Tasks []Task `json:"tasks,omitempty"`
}

// Task is one task of a service that Swarm wants running.
type Task struct {
	// Node is the node's hostname, or its ID when the client cannot
	// list nodes.
	Node string `json:"node"`
	// State is Swarm's task state: running, starting, preparing...
	State string `json:"state"`
	// Image is the image the task runs, repo:tag@digest.
	Image string `json:"image,omitempty"`
	// Error is why the task failed, if Swarm says.
	Error string `json:"error,omitempty"`
}

// nodeLister is the part of the engine client that names nodes; a
// client without it shows node IDs.
type nodeLister interface {
	NodeList(ctx context.Context, options swarm.NodeListOptions) ([]swarm.Node, error)
}

// Status reads the state of one service. A service that does not exist
// is a *NoServiceError.
func (u *Updater) Status(ctx context.Context, service string) (Status, error) {
	svc, err := u.inspect(ctx, service)
	if err != nil {
		return Status{}, err
	}
	ref := imageref.Split(specImage(svc))
	st := Status{Name: svc.Spec.Name, Image: specImage(svc), Digest: ref.Digest, Tag: ref.Tag}
	if svc.UpdateStatus != nil {
		st.UpdateState = string(svc.UpdateStatus.State)
	}
	if svc.PreviousSpec != nil && svc.PreviousSpec.TaskTemplate.ContainerSpec != nil {
		st.Previous = svc.PreviousSpec.TaskTemplate.ContainerSpec.Image
	}
	tasks, err := u.c.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", svc.ID), filters.Arg("desired-state", "running"))})
	if err != nil {
		return Status{}, fmt.Errorf("list tasks of %s: %w", service, err)
	}
	hosts := u.hostnames(ctx)
	for _, t := range tasks {
		if t.Status.State == swarm.TaskStateRunning {
			st.Running++
		}
		node := cmp.Or(hosts[t.NodeID], t.NodeID)
		task := Task{Node: node, State: string(t.Status.State), Error: t.Status.Err}
		if t.Spec.ContainerSpec != nil {
			task.Image = t.Spec.ContainerSpec.Image
		}
		st.Tasks = append(st.Tasks, task)
	}
	if r := svc.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		st.Desired = *r.Replicas
	} else {
		st.Desired = uint64(len(tasks))
	}
	return st, nil
}
