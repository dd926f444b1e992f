package updater

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// stuckSwarm is fakeSwarm where one task of the new spec cannot be placed
// (its node was lost), on a Swarm that names its nodes.
type stuckSwarm struct {
	*fakeSwarm
	old swarm.TaskSpec // the spec before the update
}

func (s stuckSwarm) TaskList(context.Context, swarm.TaskListOptions) ([]swarm.Task, error) {
	spec := s.svc.Spec.TaskTemplate
	return []swarm.Task{
		{Slot: 1, NodeID: "n1", Spec: spec, Status: swarm.TaskStatus{State: swarm.TaskStateRunning}},
		{Slot: 2, NodeID: "n2", Spec: spec, Status: swarm.TaskStatus{State: swarm.TaskStateRunning}},
		{Slot: 3, Spec: spec, Status: swarm.TaskStatus{State: swarm.TaskStatePending, Err: "no suitable node (max replicas per node limit exceed)"}},
		{Slot: 4, NodeID: "n3", Spec: s.old, Status: swarm.TaskStatus{State: swarm.TaskStateRunning}},
	}, nil
}

func (s stuckSwarm) NodeList(context.Context, swarm.NodeListOptions) ([]swarm.Node, error) {
	return []swarm.Node{
		{ID: "n1", Description: swarm.NodeDescription{Hostname: "manager"}, Status: swarm.NodeStatus{State: swarm.NodeStateReady}},
		{ID: "n3", Description: swarm.NodeDescription{Hostname: "worker-3"}, Status: swarm.NodeStatus{State: swarm.NodeStateDown}},
	}, nil
}

func TestTimeoutSaysWhatHeldTheUpdate(t *testing.T) {
	three := uint64(3)
	f := newFake("r/api:main-1@sha256:aaa", swarm.UpdateStateUpdating)
	f.svc.Spec.Mode.Replicated.Replicas = &three
	u := New(stuckSwarm{fakeSwarm: f, old: f.svc.Spec.TaskTemplate}, "")
	u.poll = time.Millisecond
	var log bytes.Buffer
	res, err := u.Update(context.Background(), Request{Service: "api", Image: "r/api:main-2@sha256:bbb", Timeout: 50 * time.Millisecond}, &log)
	if res.Outcome != TimedOut || err == nil {
		t.Fatalf("outcome %s, err %v; want timed_out", res.Outcome, err)
	}
	for _, want := range []string{"swarm still says updating (fake); 2/3 tasks running the current spec", "task 3 on no node pending (no suitable node (max replicas per node limit exceed))",
		"task 4 on worker-3 (node down) still running the previous spec"} {
		if !strings.Contains(res.Message, want) {
			t.Errorf("message %q lacks %q", res.Message, want)
		}
	}
}
