package updater

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/swarm"
	"github.com/google/go-cmp/cmp"
)

// goneSwarm answers every inspect as the engine does for a service that
// does not exist.
type goneSwarm struct{ *fakeSwarm }

func (goneSwarm) ServiceInspectWithRaw(_ context.Context, name string, _ swarm.ServiceInspectOptions) (swarm.Service, []byte, error) {
	return swarm.Service{}, nil, fmt.Errorf("Error response from daemon: service %s not found: %w", name, cerrdefs.ErrNotFound)
}

// TestServiceThatDoesNotExistIsNamed: every action on a service that does
// not exist fails with a *NoServiceError saying so, and so does a name
// the engine only matches as a prefix of another service's ID; nothing
// is updated.
func TestServiceThatDoesNotExistIsNamed(t *testing.T) {
	tests := []struct {
		name    string
		client  Client
		service string
	}{
		{"not found", goneSwarm{newFake("r/api:1")}, "shop_api"},
		{"only a prefix of another service's ID", newFake("r/api:1"), "id"}, // newFake's service is api, ID id1
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := New(tt.client, "")
			want := "service " + tt.service + " does not exist"
			actions := map[string]func() error{
				"current image": func() error { _, err := u.CurrentImage(context.Background(), tt.service); return err },
				"update": func() error {
					_, err := u.Update(context.Background(), Request{Service: tt.service, Image: "r/api:2@sha256:b", Timeout: time.Second}, &bytes.Buffer{})
					return err
				},
				"status": func() error { _, err := u.Status(context.Background(), tt.service); return err },
				"redeploy": func() error {
					_, err := u.Redeploy(context.Background(), tt.service, time.Second, &bytes.Buffer{})
					return err
				},
			}
			for action, do := range actions {
				err := do()
				var missing *NoServiceError
				if !errors.As(err, &missing) || err.Error() != want {
					t.Errorf("%s: err = %v, want %q", action, err, want)
				}
			}
			if f, ok := tt.client.(*fakeSwarm); ok && len(f.updates) > 0 {
				t.Errorf("updated a service that does not exist: %+v", f.updates)
			}
		})
	}
}

// lister is a ServiceList of fixed services.
type lister []swarm.Service

func (l lister) ServiceList(context.Context, swarm.ServiceListOptions) ([]swarm.Service, error) {
	return l, nil
}

func (l lister) TaskList(context.Context, swarm.TaskListOptions) ([]swarm.Task, error) {
	return nil, nil
}

func TestInventoryMissing(t *testing.T) {
	svcs := lister{
		{ID: "abc123", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "shop_api"}}},
		{ID: "def456", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "shop_web"}}},
	}
	got, err := NewInventory(svcs).Missing(context.Background(), []string{"shop_api", "shop_gone", "def456", "abc", "shop_gone", "shop_web"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"shop_gone", "abc"}, got); diff != "" {
		t.Errorf("missing (-want +got):\n%s", diff)
	}
}
