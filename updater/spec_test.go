package updater

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

func (f *fakeSwarm) ServiceCreate(_ context.Context, spec swarm.ServiceSpec, _ swarm.ServiceCreateOptions) (swarm.ServiceCreateResponse, error) {
	f.updates = append(f.updates, spec)
	f.svc.Spec = spec
	return swarm.ServiceCreateResponse{ID: "id1"}, nil
}

func TestReplaceAndCreate(t *testing.T) {
	const old = "r/api:main-1@sha256:aaa"
	tests := []struct {
		name    string
		create  bool
		states  []swarm.UpdateState
		want    Outcome
		wantErr bool
	}{
		{"replace completes", false, []swarm.UpdateState{swarm.UpdateStateUpdating, swarm.UpdateStateCompleted}, Updated, false},
		{"replace rolled back", false, []swarm.UpdateState{swarm.UpdateStateRollbackCompleted}, RolledBack, true},
		{"create runs", true, []swarm.UpdateState{""}, Updated, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(old, tt.states...)
			f.svc.Spec.TaskTemplate.ForceUpdate = 3
			u := New(f, "")
			u.poll = time.Millisecond
			next := f.svc.Spec
			next.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: old, Env: []string{"A=2"}}
			next.TaskTemplate.ForceUpdate = 0
			s := Settings{Pace: Pace{Parallelism: 1, FailureAction: "rollback"}}
			var log bytes.Buffer
			var res Result
			var err error
			if tt.create {
				res, err = u.Create(context.Background(), f, next, s, time.Second, &log)
			} else {
				res, err = u.Replace(context.Background(), next, s, time.Second, &log)
			}
			if res.Outcome != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("outcome %s, err %v; want %s (error %v)\n%s", res.Outcome, err, tt.want, tt.wantErr, log.String())
			}
			if tt.wantErr && !errors.Is(err, ErrNotConverged) {
				t.Errorf("err %v does not wrap ErrNotConverged", err)
			}
			if len(f.updates) != 1 {
				t.Fatalf("%d writes, want 1", len(f.updates))
			}
			got := f.updates[0]
			if got.TaskTemplate.ContainerSpec.Env[0] != "A=2" || got.UpdateConfig == nil || got.UpdateConfig.Parallelism != 1 {
				t.Errorf("written spec %+v lacks the new env or the update settings", got)
			}
			if !tt.create && got.TaskTemplate.ForceUpdate != 4 {
				t.Errorf("force-update counter %d, want one more than the running 3, so old tasks never count as converged", got.TaskTemplate.ForceUpdate)
			}
		})
	}
}

// staleSwarm's tasks all still run the spec from before the update.
type staleSwarm struct {
	*fakeSwarm
	old swarm.TaskSpec
}

func (s *staleSwarm) TaskList(context.Context, swarm.TaskListOptions) ([]swarm.Task, error) {
	return []swarm.Task{{Spec: s.old, Status: swarm.TaskStatus{State: swarm.TaskStateRunning}}}, nil
}

// TestReplaceWaitsForTasksOfTheNewSpec: an env-only change keeps the
// image, and Swarm clears the update status when it takes the spec, so
// the old tasks must not count as converged.
func TestReplaceWaitsForTasksOfTheNewSpec(t *testing.T) {
	f := newFake("r/api@sha256:aaa", "")
	s := &staleSwarm{fakeSwarm: f, old: f.svc.Spec.TaskTemplate}
	u := New(s, "")
	u.poll = time.Millisecond
	next := f.svc.Spec
	next.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: "r/api@sha256:aaa", Env: []string{"A=2"}}
	var log bytes.Buffer
	res, err := u.Replace(context.Background(), next, Settings{}, 50*time.Millisecond, &log)
	if res.Outcome != TimedOut || err == nil {
		t.Fatalf("outcome %s (%v) while every task runs the old spec, want timed_out\n%s", res.Outcome, err, log.String())
	}
}
