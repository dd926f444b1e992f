package updater

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// pullSwarm is fakeSwarm that also creates and removes services: the
// pre-pull job's tasks end as tasks says.
type pullSwarm struct {
	*fakeSwarm
	calls   []string
	created []swarm.ServiceSpec
	auth    string
	tasks   []swarm.Task
}

func (p *pullSwarm) ServiceCreate(_ context.Context, spec swarm.ServiceSpec, o swarm.ServiceCreateOptions) (swarm.ServiceCreateResponse, error) {
	p.calls = append(p.calls, "create")
	p.created, p.auth = append(p.created, spec), o.EncodedRegistryAuth
	return swarm.ServiceCreateResponse{ID: "pull1"}, nil
}

func (p *pullSwarm) ServiceRemove(_ context.Context, id string) error {
	p.calls = append(p.calls, "remove "+id)
	return nil
}

func (p *pullSwarm) ServiceUpdate(ctx context.Context, id string, v swarm.Version, spec swarm.ServiceSpec, o swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error) {
	p.calls = append(p.calls, "update")
	return p.fakeSwarm.ServiceUpdate(ctx, id, v, spec, o)
}

func (p *pullSwarm) TaskList(ctx context.Context, o swarm.TaskListOptions) ([]swarm.Task, error) {
	if o.Filters.Get("service")[0] == "pull1" {
		return p.tasks, nil
	}
	return p.fakeSwarm.TaskList(ctx, o)
}

func TestPrePull(t *testing.T) {
	const old, next = "r/api:main-1@sha256:aaa", "r/api:main-2@sha256:bbb"
	ended := []swarm.Task{
		{NodeID: "n1", Status: swarm.TaskStatus{State: swarm.TaskStateFailed, Err: "starting container failed: no such file"}},
		{NodeID: "n2", Status: swarm.TaskStatus{State: swarm.TaskStateRejected, Err: "No such image: r/api"}},
	}
	tests := []struct {
		name    string
		prePull bool
		image   string
		calls   []string
	}{
		{"pulled before the update", true, next, []string{"create", "remove pull1", "update"}},
		{"off by default", false, next, []string{"update"}},
		{"nothing to pull when unchanged", true, old, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &pullSwarm{fakeSwarm: newFake(old, swarm.UpdateStateCompleted), tasks: ended}
			f.svc.Spec.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.labels.tier==web"}, MaxReplicas: 1}
			u := New(f, "e30=")
			u.poll = time.Millisecond
			var log bytes.Buffer
			_, err := u.Update(context.Background(), Request{Service: "api", Image: tt.image, PrePull: tt.prePull, Timeout: time.Second}, &log)
			if err != nil {
				t.Fatalf("update: %v\n%s", err, log.String())
			}
			if !slices.Equal(f.calls, tt.calls) {
				t.Fatalf("calls %v, want %v", f.calls, tt.calls)
			}
			if len(f.created) == 0 {
				return
			}
			spec := f.created[0]
			cs := spec.TaskTemplate.ContainerSpec
			if cs.Image != next || !slices.Equal(cs.Command, []string{prePullEntrypoint}) || len(cs.Args) != 0 {
				t.Errorf("pre-pull container spec %+v: want the new image with an entrypoint that never runs", cs)
			}
			if spec.Mode.GlobalJob == nil || spec.TaskTemplate.RestartPolicy.Condition != swarm.RestartPolicyConditionNone {
				t.Errorf("pre-pull mode %+v, restart %+v: want a global job that is not restarted", spec.Mode, spec.TaskTemplate.RestartPolicy)
			}
			if p := spec.TaskTemplate.Placement; !slices.Equal(p.Constraints, []string{"node.labels.tier==web"}) || p.MaxReplicas != 0 {
				t.Errorf("pre-pull placement %+v: want the service's constraints only", p)
			}
			if f.auth != "e30=" || spec.Labels[PrePullLabel] != "api" {
				t.Errorf("registry auth %q, labels %v", f.auth, spec.Labels)
			}
			for _, want := range []string{"pre-pulled on 1 of 2 nodes", "pre-pull failed on n2 (No such image: r/api)"} {
				if !strings.Contains(log.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, log.String())
				}
			}
		})
	}
}
