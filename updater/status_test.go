package updater

import (
	"context"
	"testing"

	"github.com/docker/docker/api/types/swarm"
	"github.com/google/go-cmp/cmp"
)

// nodeSwarm is fakeSwarm with tasks on named nodes.
type nodeSwarm struct {
	*fakeSwarm
	tasks []swarm.Task
	nodes []swarm.Node
}

func (n *nodeSwarm) TaskList(context.Context, swarm.TaskListOptions) ([]swarm.Task, error) {
	return n.tasks, nil
}

func (n *nodeSwarm) NodeList(context.Context, swarm.NodeListOptions) ([]swarm.Node, error) {
	return n.nodes, nil
}

func TestStatusShowsTasksPerNode(t *testing.T) {
	const old, cur = "reg:5000/a:1@sha256:01", "reg:5000/a:2@sha256:02"
	task := func(node, image string, state swarm.TaskState, errMsg string) swarm.Task {
		return swarm.Task{NodeID: node, Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}},
			Status: swarm.TaskStatus{State: state, Err: errMsg}}
	}
	f := &nodeSwarm{fakeSwarm: newFake(cur),
		tasks: []swarm.Task{
			task("n3", cur, swarm.TaskStatePreparing, ""),
			task("n1", cur, swarm.TaskStateRunning, ""),
			task("n2", old, swarm.TaskStateRunning, ""),
			task("gone", cur, swarm.TaskStateRejected, "No such image"),
		},
		nodes: []swarm.Node{
			{ID: "n1", Description: swarm.NodeDescription{Hostname: "manager"}},
			{ID: "n2", Description: swarm.NodeDescription{Hostname: "worker-a"}},
			{ID: "n3", Description: swarm.NodeDescription{Hostname: "worker-b"}},
		},
	}
	st, err := New(f, "").Status(context.Background(), "api")
	if err != nil {
		t.Fatal(err)
	}
	want := []Task{
		{Node: "gone", NodeID: "gone", State: "rejected", Image: cur, Digest: "sha256:02", Error: "No such image"},
		{Node: "manager", NodeID: "n1", State: "running", Image: cur, Digest: "sha256:02"},
		{Node: "worker-a", NodeID: "n2", State: "running", Image: old, Digest: "sha256:01"},
		{Node: "worker-b", NodeID: "n3", State: "preparing", Image: cur, Digest: "sha256:02"},
	}
	if diff := cmp.Diff(want, st.Tasks); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
	if st.Running != 2 {
		t.Errorf("running = %d, want 2", st.Running)
	}
}
