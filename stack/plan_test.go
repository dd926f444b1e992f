package stack

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/google/go-cmp/cmp"

	"github.com/swarmhook/swarmhook/updater"
)

func spec(name, image string, env ...string) swarm.ServiceSpec {
	one := uint64(1)
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: map[string]string{NamespaceLabel: "shop"}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image, Env: env,
			Labels: map[string]string{NamespaceLabel: "shop"}},
			Networks: []swarm.NetworkAttachmentConfig{{Target: "shop_default", Aliases: []string{strings.TrimPrefix(name, "shop_")}}}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP},
	}
}

// withPorts is s publishing target/protocol pairs, each on itself.
func withPorts(s swarm.ServiceSpec, pairs ...any) swarm.ServiceSpec {
	ep := &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP}
	for i := 0; i+1 < len(pairs); i += 2 {
		n := uint32(pairs[i].(int))
		ep.Ports = append(ep.Ports, swarm.PortConfig{TargetPort: n, PublishedPort: n, Protocol: swarm.PortConfigProtocol(pairs[i+1].(string))})
	}
	s.EndpointSpec = ep
	return s
}

// running is spec as Swarm answers it: networks by ID, the endpoint
// mode left to its default, empty resources filled in.
func running(id string, s swarm.ServiceSpec) swarm.Service {
	s.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "net1", Aliases: s.TaskTemplate.Networks[0].Aliases}}
	s.EndpointSpec = nil
	s.TaskTemplate.Resources = &swarm.ResourceRequirements{Limits: &swarm.Limit{}, Reservations: &swarm.Resources{}}
	return swarm.Service{ID: id, Spec: s}
}

var defaultNet = []network.Summary{{ID: "net1", Name: "shop_default"}}

func TestDiff(t *testing.T) {
	web, api := spec("shop_web", "nginx:1.27", "A=1"), spec("shop_api", "reg/shop/api@sha256:1")
	tests := []struct {
		name    string
		desired []swarm.ServiceSpec
		running []swarm.Service
		configs []swarm.Config
		dconfs  []Object
		prune   bool
		want    []Change
	}{
		{
			name:    "first deploy creates all",
			desired: []swarm.ServiceSpec{web, api},
			want:    []Change{{KindService, "shop_web", Create, nil}, {KindService, "shop_api", Create, nil}},
		},
		{
			name:    "same spec as Swarm writes it back is unchanged",
			desired: []swarm.ServiceSpec{web, api},
			running: []swarm.Service{running("1", web), running("2", api)},
			want:    []Change{{KindService, "shop_web", Unchanged, nil}, {KindService, "shop_api", Unchanged, nil}},
		},
		{
			name:    "one env var changes one service",
			desired: []swarm.ServiceSpec{spec("shop_web", "nginx:1.27", "A=2"), api},
			running: []swarm.Service{running("1", web), running("2", api)},
			want:    []Change{{KindService, "shop_web", Update, []string{"environment"}}, {KindService, "shop_api", Unchanged, nil}},
		},
		{
			name:    "a new digest is an image change",
			desired: []swarm.ServiceSpec{web, spec("shop_api", "reg/shop/api@sha256:2")},
			running: []swarm.Service{running("1", web), running("2", api)},
			want:    []Change{{KindService, "shop_web", Unchanged, nil}, {KindService, "shop_api", Update, []string{"image"}}},
		},
		{
			name:    "an image Swarm pinned is unchanged",
			desired: []swarm.ServiceSpec{web},
			running: []swarm.Service{running("1", spec("shop_web", "nginx:1.27@sha256:9", "A=1"))},
			want:    []Change{{KindService, "shop_web", Unchanged, nil}},
		},
		{
			name:    "the same digest under another tag is unchanged",
			desired: []swarm.ServiceSpec{spec("shop_web", "reg/shop/web:main-latest@sha256:7", "A=1")},
			running: []swarm.Service{running("1", spec("shop_web", "reg/shop/web:main-2026@sha256:7", "A=1"))},
			want:    []Change{{KindService, "shop_web", Unchanged, nil}},
		},
		{
			name:    "ports Swarm lists in another order are unchanged",
			desired: []swarm.ServiceSpec{withPorts(web, 53, "udp", 53, "tcp")},
			running: []swarm.Service{{ID: "1", Spec: withPorts(web, 53, "tcp", 53, "udp")}},
			want:    []Change{{KindService, "shop_web", Unchanged, nil}},
		},
		{
			name:    "a service dropped from the file is kept without prune",
			desired: []swarm.ServiceSpec{web},
			running: []swarm.Service{running("1", web), running("2", api)},
			want:    []Change{{KindService, "shop_web", Unchanged, nil}, {KindService, "shop_api", Keep, nil}},
		},
		{
			name:    "and removed with prune",
			desired: []swarm.ServiceSpec{web},
			running: []swarm.Service{running("1", web), running("2", api)},
			prune:   true,
			want:    []Change{{KindService, "shop_web", Unchanged, nil}, {KindService, "shop_api", Remove, nil}},
		},
		{
			name:    "a rotated config is created and the old one retired",
			desired: []swarm.ServiceSpec{web},
			running: []swarm.Service{running("1", web)},
			configs: []swarm.Config{{ID: "c1", Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: "shop_site_old"}}}},
			dconfs:  []Object{{Key: "site", Name: "shop_site_new"}},
			want: []Change{{KindConfig, "shop_site_new", Create, nil}, {KindService, "shop_web", Unchanged, nil},
				{KindConfig, "shop_site_old", Remove, nil}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Desired{Name: "shop", Configs: tt.dconfs}
			for _, s := range tt.desired {
				d.Services = append(d.Services, Service{Key: strings.TrimPrefix(s.Name, "shop_"), Spec: s})
			}
			p := diff(d, tt.prune, tt.running, defaultNet, tt.configs, nil)
			if diff := cmp.Diff(tt.want, p.Changes); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOrder(t *testing.T) {
	svcs := []Service{{Key: "a"}, {Key: "b"}, {Key: "c"}}
	got, err := order(svcs, []string{"c", "a"})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range got {
		keys = append(keys, s.Key)
	}
	if diff := cmp.Diff([]string{"c", "a", "b"}, keys); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if _, err := order(svcs, []string{"x"}); err == nil {
		t.Error("an order naming a service the file lacks was accepted")
	}
}

// fakeSwarm is a Client keeping services, configs and secrets in maps.
type fakeSwarm struct {
	services []swarm.Service
	configs  []swarm.Config
	secrets  []swarm.Secret
	calls    []string
}

func (f *fakeSwarm) ServiceList(context.Context, swarm.ServiceListOptions) ([]swarm.Service, error) {
	return f.services, nil
}
func (f *fakeSwarm) ServiceCreate(_ context.Context, s swarm.ServiceSpec, _ swarm.ServiceCreateOptions) (swarm.ServiceCreateResponse, error) {
	f.calls = append(f.calls, "create service "+s.Name)
	return swarm.ServiceCreateResponse{}, nil
}
func (f *fakeSwarm) ServiceRemove(_ context.Context, id string) error {
	f.calls = append(f.calls, "remove service "+id)
	return nil
}
func (f *fakeSwarm) NetworkList(context.Context, network.ListOptions) ([]network.Summary, error) {
	return defaultNet, nil
}
func (f *fakeSwarm) NetworkCreate(_ context.Context, name string, _ network.CreateOptions) (network.CreateResponse, error) {
	f.calls = append(f.calls, "create network "+name)
	return network.CreateResponse{}, nil
}
func (f *fakeSwarm) NetworkRemove(context.Context, string) error { return nil }
func (f *fakeSwarm) ConfigList(context.Context, swarm.ConfigListOptions) ([]swarm.Config, error) {
	return f.configs, nil
}
func (f *fakeSwarm) ConfigCreate(_ context.Context, c swarm.ConfigSpec) (swarm.ConfigCreateResponse, error) {
	f.calls = append(f.calls, "create config "+c.Name)
	f.configs = append(f.configs, swarm.Config{ID: "id-" + c.Name, Spec: c})
	return swarm.ConfigCreateResponse{}, nil
}
func (f *fakeSwarm) ConfigRemove(_ context.Context, id string) error {
	f.calls = append(f.calls, "remove config "+id)
	return nil
}
func (f *fakeSwarm) SecretList(context.Context, swarm.SecretListOptions) ([]swarm.Secret, error) {
	return f.secrets, nil
}
func (f *fakeSwarm) SecretCreate(_ context.Context, s swarm.SecretSpec) (swarm.SecretCreateResponse, error) {
	f.calls = append(f.calls, "create secret "+s.Name)
	f.secrets = append(f.secrets, swarm.Secret{ID: "id-" + s.Name, Spec: s})
	return swarm.SecretCreateResponse{}, nil
}
func (f *fakeSwarm) SecretRemove(context.Context, string) error { return nil }

// fakeRollout records what it was asked and fails the services in fail.
type fakeRollout struct {
	f    *fakeSwarm
	fail map[string]bool
}

func (r *fakeRollout) result(name, verb string) (updater.Result, error) {
	r.f.calls = append(r.f.calls, verb+" "+name)
	if r.fail[name] {
		return updater.Result{Service: name, Outcome: updater.RolledBack}, updater.ErrNotConverged
	}
	return updater.Result{Service: name, Outcome: updater.Updated}, nil
}
func (r *fakeRollout) Create(_ context.Context, _ updater.Creator, s swarm.ServiceSpec, _ updater.Settings, _ time.Duration, _ io.Writer) (updater.Result, error) {
	return r.result(s.Name, "roll out new")
}
func (r *fakeRollout) Replace(_ context.Context, s swarm.ServiceSpec, _ updater.Settings, _ time.Duration, _ io.Writer) (updater.Result, error) {
	for _, c := range s.TaskTemplate.ContainerSpec.Configs {
		if c.ConfigID == "" {
			return updater.Result{}, errors.New("config without ID")
		}
	}
	return r.result(s.Name, "replace")
}
func (r *fakeRollout) Rollback(_ context.Context, service string, _ time.Duration, _ io.Writer) (updater.Result, error) {
	r.f.calls = append(r.f.calls, "rollback "+service)
	return updater.Result{Service: service, Outcome: updater.RolledBack}, nil
}

func TestApply(t *testing.T) {
	web, api, worker := spec("shop_web", "nginx:1.27", "A=1"), spec("shop_api", "reg/shop/api@sha256:1"), spec("shop_worker", "busybox:1")
	newWeb := spec("shop_web", "nginx:1.27", "A=2")
	newWeb.TaskTemplate.ContainerSpec.Configs = []*swarm.ConfigReference{{ConfigName: "shop_site_new", File: &swarm.ConfigReferenceFileTarget{Name: "/site"}}}
	oldConfig := swarm.Config{ID: "old", Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: "shop_site_old"}}}
	tests := []struct {
		name        string
		fail        map[string]bool
		rollbackAll bool
		prune       bool
		want        []string
		wantOut     []updater.Outcome
		wantErr     bool
	}{
		{
			name:    "creates, updates in order, removes the old config after",
			want:    []string{"create config shop_site_new", "replace shop_web", "roll out new shop_api", "remove config old"},
			wantOut: []updater.Outcome{updater.Updated, updater.Updated, updater.Unchanged},
		},
		{
			name:    "with prune the dropped service goes after every update",
			prune:   true,
			want:    []string{"create config shop_site_new", "replace shop_web", "roll out new shop_api", "remove service w", "remove config old"},
			wantOut: []updater.Outcome{updater.Updated, updater.Updated, updater.Unchanged},
		},
		{
			name:    "a failed update stops the plan and removes nothing",
			fail:    map[string]bool{"shop_web": true},
			prune:   true,
			want:    []string{"create config shop_site_new", "replace shop_web"},
			wantOut: []updater.Outcome{updater.RolledBack, updater.Skipped, updater.Skipped},
			wantErr: true,
		},
		{
			name:        "rollback_all reverts the updated and removes the created, newest first",
			fail:        map[string]bool{"shop_worker2": true},
			rollbackAll: true,
			want: []string{"create config shop_site_new", "replace shop_web", "roll out new shop_api", "roll out new shop_worker2",
				"remove service shop_api", "rollback shop_web"},
			wantOut: []updater.Outcome{updater.Updated, updater.Updated, updater.RolledBack},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSwarm{services: []swarm.Service{running("w", worker), running("1", web)}, configs: []swarm.Config{oldConfig}}
			third := Service{Key: "worker", Spec: worker}
			if tt.rollbackAll {
				third = Service{Key: "worker2", Spec: spec("shop_worker2", "busybox:1")}
			}
			d := &Desired{Name: "shop", Configs: []Object{{Key: "site", Name: "shop_site_new"}},
				Services: []Service{{Key: "web", Spec: newWeb}, {Key: "api", Spec: api}, third}}
			if !tt.rollbackAll {
				d.Services[2] = Service{Key: "worker", Spec: worker}
				f.services[0] = running("w", spec("shop_gone", "busybox:1"))
				f.services = append(f.services, running("x", worker))
			}
			p, err := MakePlan(context.Background(), f, d, PlanOptions{Prune: tt.prune})
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			out, err := Apply(context.Background(), f, &fakeRollout{f: f, fail: tt.fail}, p, ApplyOptions{RollbackAll: tt.rollbackAll}, &log)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Apply error %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, f.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			var outcomes []updater.Outcome
			for _, r := range out.Services {
				outcomes = append(outcomes, r.Outcome)
			}
			if diff := cmp.Diff(tt.wantOut, outcomes); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlanRefusesForeignNetwork: a network of the stack's name that
// another stack (or a person) made is not joined.
func TestPlanRefusesForeignNetwork(t *testing.T) {
	d := &Desired{Name: "shop", Networks: []Network{{Name: "shop_default"}}, Services: []Service{{Key: "web", Spec: spec("shop_web", "nginx:1.27")}}}
	_, err := MakePlan(context.Background(), &fakeSwarm{}, d, PlanOptions{})
	if err == nil || !strings.Contains(err.Error(), "exists outside stack shop") {
		t.Fatalf("error %v, want the foreign network refused", err)
	}
}
