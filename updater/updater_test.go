package updater

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// fakeSwarm replays Swarm states: each inspect after the update returns
// the next state in states (the last one repeats); tasks all run the
// spec's current image once the state is completed.
type fakeSwarm struct {
	svc       swarm.Service
	states    []swarm.UpdateState
	conflicts int // ServiceUpdate answers "out of sequence" this many times
	updates   []swarm.ServiceSpec
	inspects  int
}

func (f *fakeSwarm) ServiceInspectWithRaw(context.Context, string, swarm.ServiceInspectOptions) (swarm.Service, []byte, error) {
	s := f.svc
	if len(f.updates) > 0 {
		f.inspects++
		st := f.states[min(f.inspects-1, len(f.states)-1)]
		if st != "" {
			s.UpdateStatus = &swarm.UpdateStatus{State: st, Message: "fake"}
		}
	}
	return s, nil, nil
}

func (f *fakeSwarm) ServiceUpdate(_ context.Context, _ string, v swarm.Version, spec swarm.ServiceSpec, _ swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error) {
	if f.conflicts > 0 {
		f.conflicts--
		f.svc.Version.Index++
		return swarm.ServiceUpdateResponse{}, errors.New("rpc error: code = Unknown desc = update out of sequence")
	}
	f.updates = append(f.updates, spec)
	f.svc.PreviousSpec = &f.svc.Spec
	f.svc.Spec = spec
	return swarm.ServiceUpdateResponse{}, nil
}

func (f *fakeSwarm) TaskList(context.Context, swarm.TaskListOptions) ([]swarm.Task, error) {
	t := swarm.Task{Spec: f.svc.Spec.TaskTemplate, Status: swarm.TaskStatus{State: swarm.TaskStateRunning}}
	return []swarm.Task{t}, nil
}

func newFake(image string, states ...swarm.UpdateState) *fakeSwarm {
	one := uint64(1)
	return &fakeSwarm{states: states, svc: swarm.Service{ID: "id1", Spec: swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: "api", Labels: map[string]string{"keep": "me"}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image, Env: []string{"A=1"}}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
	}}}
}

func TestUpdateOutcomes(t *testing.T) {
	const old, next = "r/api:main-1@sha256:aaa", "r/api:main-2@sha256:bbb"
	tests := []struct {
		name    string
		fake    *fakeSwarm
		image   string
		want    Outcome
		wantErr bool
		updates int
	}{
		{"completed", newFake(old, swarm.UpdateStateUpdating, swarm.UpdateStateCompleted), next, Updated, false, 1},
		{"rolled back by swarm", newFake(old, swarm.UpdateStateUpdating, swarm.UpdateStateRollbackStarted, swarm.UpdateStateRollbackCompleted), next, RolledBack, true, 1},
		{"paused", newFake(old, swarm.UpdateStateUpdating, swarm.UpdateStatePaused), next, Paused, true, 1},
		{"same digest", newFake("r/api:other@sha256:bbb"), next, Unchanged, false, 0},
		{"concurrent change retried", func() *fakeSwarm { f := newFake(old, swarm.UpdateStateCompleted); f.conflicts = 2; return f }(), next, Updated, false, 1},
		{"never settles", newFake(old, swarm.UpdateStateUpdating), next, TimedOut, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := New(tt.fake, "e30=")
			u.poll = time.Millisecond
			var log bytes.Buffer
			res, err := u.Update(context.Background(), Request{Service: "api", Image: tt.image, Timeout: 300 * time.Millisecond,
				Settings: Settings{Pace: Pace{Parallelism: 1, FailureAction: "rollback", Order: "stop-first"}}}, &log)
			if res.Outcome != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("outcome %s, err %v; want %s (error %v)\n%s", res.Outcome, err, tt.want, tt.wantErr, log.String())
			}
			if tt.wantErr && !errors.Is(err, ErrNotConverged) {
				t.Errorf("err %v does not wrap ErrNotConverged", err)
			}
			if len(tt.fake.updates) != tt.updates {
				t.Fatalf("%d updates, want %d", len(tt.fake.updates), tt.updates)
			}
			if tt.updates > 0 {
				spec := tt.fake.updates[0]
				if spec.TaskTemplate.ContainerSpec.Image != next || spec.TaskTemplate.ContainerSpec.Env[0] != "A=1" || spec.Labels["keep"] != "me" {
					t.Errorf("spec changed beyond the image: %+v", spec)
				}
				if spec.UpdateConfig.Parallelism != 1 || spec.RollbackConfig == nil {
					t.Errorf("update config = %+v, rollback %+v", spec.UpdateConfig, spec.RollbackConfig)
				}
				if res.Previous != old {
					t.Errorf("previous = %s", res.Previous)
				}
			}
		})
	}
}
