package updater

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// PrePullLabel marks the one-shot services a pre-pull creates; its value
// is the service being pre-pulled for.
const PrePullLabel = "io.swarmhook.prepull"

// prePullEntrypoint replaces the image's entrypoint in a pre-pull's
// tasks: a path no image has, so the container is created (which needs the
// image, so the node pulls it) and fails to start. No code of the image
// ever runs, and FROM scratch images without a shell work the same.
const prePullEntrypoint = "/.swarmhook-prepull/never-runs"

// prePullPoll is how often a pre-pull's tasks are looked at.
const prePullPoll = 250 * time.Millisecond

// serviceMaker creates and removes services; the engine client has it.
type serviceMaker interface {
	ServiceCreate(ctx context.Context, service swarm.ServiceSpec, options swarm.ServiceCreateOptions) (swarm.ServiceCreateResponse, error)
	ServiceRemove(ctx context.Context, serviceID string) error
}

// prePull pulls image on every node svc's placement allows before svc's
// rolling update starts, so no task's stop-to-start gap includes the pull.
// It runs a global job of image (Swarm's own pull, with the same registry
// credentials as the update) whose tasks never start any of the image's
// code, waits until each node's task ended, reports per node, and removes
// the job. It is best effort: where a node could not pull, the update
// itself says so.
func (u *Updater) prePull(ctx context.Context, svc swarm.Service, image string, timeout time.Duration, log io.Writer) {
	name := svc.Spec.Name
	sm, ok := u.c.(serviceMaker)
	if !ok {
		fmt.Fprintf(log, "service %s: pre-pull skipped: the engine client cannot create services\n", name)
		return
	}
	if timeout <= 0 || timeout > 5*time.Minute {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	b := make([]byte, 4)
	rand.Read(b)
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "swarmhook-prepull-" + hex.EncodeToString(b), Labels: map[string]string{PrePullLabel: name}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: image, Command: []string{prePullEntrypoint}, Args: []string{}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone},
		},
		Mode: swarm.ServiceMode{GlobalJob: &swarm.GlobalJob{}},
	}
	if p := svc.Spec.TaskTemplate.Placement; p != nil {
		// The nodes the service may run on; spread and per-node limits
		// do not narrow which nodes those are.
		spec.TaskTemplate.Placement = &swarm.Placement{Constraints: slices.Clone(p.Constraints), Platforms: slices.Clone(p.Platforms)}
	}
	start := u.now()
	fmt.Fprintf(log, "service %s: pre-pulling %s on the nodes it may run on\n", name, image)
	resp, err := sm.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{EncodedRegistryAuth: u.auth})
	if err != nil {
		fmt.Fprintf(log, "service %s: pre-pull skipped: create the pre-pull job: %v\n", name, err)
		return
	}
	defer func() {
		if err := sm.ServiceRemove(context.WithoutCancel(ctx), resp.ID); err != nil {
			fmt.Fprintf(log, "service %s: remove pre-pull job %s: %v\n", name, spec.Name, err)
		}
	}()
	tasks, err := u.prePullEnded(ctx, resp.ID)
	if err != nil {
		fmt.Fprintf(log, "service %s: pre-pull incomplete, updating anyway: %v\n", name, err)
		return
	}
	hosts := u.hostnames(ctx)
	var pulled, failed []string
	for _, t := range tasks {
		node := hosts[t.NodeID]
		if node == "" {
			node = t.NodeID
		}
		// Swarm rejects a task whose image it cannot pull; every other
		// end means the container was created from the pulled image.
		if t.Status.State == swarm.TaskStateRejected {
			failed = append(failed, fmt.Sprintf("%s (%s)", node, t.Status.Err))
			continue
		}
		pulled = append(pulled, node)
	}
	slices.Sort(pulled)
	fmt.Fprintf(log, "service %s: pre-pulled on %d of %d nodes in %s: %s\n", name, len(pulled), len(tasks),
		u.now().Sub(start).Round(10*time.Millisecond), strings.Join(pulled, ", "))
	for _, f := range failed {
		fmt.Fprintf(log, "service %s: pre-pull failed on %s\n", name, f)
	}
}

// prePullEnded waits until the pre-pull job has tasks and, on every node
// it has tasks on, one of them got past pulling: it started or failed to
// (the image is there), or was rejected (the pull failed). It returns that
// task of each node. Swarm recreates a global job's failed tasks, so the
// job is not waited out: the caller removes it.
func (u *Updater) prePullEnded(ctx context.Context, id string) ([]swarm.Task, error) {
	tick := time.NewTicker(prePullPoll)
	defer tick.Stop()
	for {
		tasks, err := u.c.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", id))})
		if err != nil {
			return nil, fmt.Errorf("list pre-pull tasks: %w", err)
		}
		done := map[string]swarm.Task{}
		nodes := map[string]bool{}
		for _, t := range tasks {
			nodes[t.NodeID] = true
			switch t.Status.State {
			case swarm.TaskStateStarting, swarm.TaskStateRunning, swarm.TaskStateComplete, swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateShutdown:
				if _, seen := done[t.NodeID]; !seen || done[t.NodeID].Status.State == swarm.TaskStateRejected {
					done[t.NodeID] = t
				}
			}
		}
		if len(tasks) > 0 && len(done) == len(nodes) {
			out := make([]swarm.Task, 0, len(done))
			for _, t := range done {
				out = append(out, t)
			}
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d nodes past pulling: %w", len(done), len(nodes), ctx.Err())
		case <-tick.C:
		}
	}
}

// hostnames maps node IDs to hostnames, when the client can list nodes.
func (u *Updater) hostnames(ctx context.Context) map[string]string {
	hosts := map[string]string{}
	for id, n := range u.nodes(ctx) {
		hosts[id] = n.Description.Hostname
	}
	return hosts
}

// nodes maps node IDs to the Swarm's nodes, when the client can list them.
func (u *Updater) nodes(ctx context.Context) map[string]swarm.Node {
	nodes := map[string]swarm.Node{}
	if nl, ok := u.c.(nodeLister); ok {
		if list, err := nl.NodeList(ctx, swarm.NodeListOptions{}); err == nil {
			for _, n := range list {
				nodes[n.ID] = n
			}
		}
	}
	return nodes
}
