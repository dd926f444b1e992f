package updater

import (
	"context"
	"testing"

	"github.com/docker/docker/api/types/swarm"
	"github.com/google/go-cmp/cmp"
)

// namedNodes is a fake client that also names its nodes.
type namedNodes struct{ *fakeSwarm }

func (namedNodes) NodeList(context.Context, swarm.NodeListOptions) ([]swarm.Node, error) {
	return []swarm.Node{{ID: "n1", Description: swarm.NodeDescription{Hostname: "manager-1"}}}, nil
}

func (n namedNodes) TaskList(context.Context, swarm.TaskListOptions) ([]swarm.Task, error) {
	return []swarm.Task{
		{NodeID: "n1", Spec: n.svc.Spec.TaskTemplate, Status: swarm.TaskStatus{State: swarm.TaskStateRunning}},
		{NodeID: "n2", Spec: n.svc.Spec.TaskTemplate, Status: swarm.TaskStatus{State: swarm.TaskStateRejected, Err: "no such image"}},
	}, nil
}

func TestStatusListsTasksPerNode(t *testing.T) {
	const image = "r/api:main-1@sha256:aaa"
	for _, tc := range []struct {
		name   string
		client Client
		want   []Task
	}{
		{"named nodes", namedNodes{newFake(image)}, []Task{
			{Node: "manager-1", State: "running", Image: image},
			{Node: "n2", State: "rejected", Image: image, Error: "no such image"},
		}},
		{"client without NodeList", newFake(image), []Task{{State: "running", Image: image}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := New(tc.client, "e30=").Status(context.Background(), "api")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, st.Tasks); diff != "" {
				t.Errorf("tasks (-want +got):\n%s", diff)
			}
		})
	}
}
