package stack

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
)

// Client is the part of the Docker Engine API a stack needs;
// *client.Client satisfies it. Safe for concurrent use.
type Client interface {
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	ServiceCreate(ctx context.Context, service swarm.ServiceSpec, options swarm.ServiceCreateOptions) (swarm.ServiceCreateResponse, error)
	ServiceRemove(ctx context.Context, serviceID string) error
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NetworkCreate(ctx context.Context, name string, options network.CreateOptions) (network.CreateResponse, error)
	NetworkRemove(ctx context.Context, networkID string) error
	ConfigList(ctx context.Context, options swarm.ConfigListOptions) ([]swarm.Config, error)
	ConfigCreate(ctx context.Context, config swarm.ConfigSpec) (swarm.ConfigCreateResponse, error)
	ConfigRemove(ctx context.Context, id string) error
	SecretList(ctx context.Context, options swarm.SecretListOptions) ([]swarm.Secret, error)
	SecretCreate(ctx context.Context, secret swarm.SecretSpec) (swarm.SecretCreateResponse, error)
	SecretRemove(ctx context.Context, id string) error
}

// Action is what a plan does to one thing.
type Action string

// Actions.
const (
	Create    Action = "create"
	Update    Action = "update"
	Unchanged Action = "unchanged"
	Remove    Action = "remove"
	// Keep: a service the file no longer lists, left running because
	// the target has no prune: true.
	Keep Action = "keep"
)

// Kinds of things a plan changes.
const (
	KindService = "service"
	KindNetwork = "network"
	KindConfig  = "config"
	KindSecret  = "secret"
)

// Change is one step of a plan. It holds names and field names only,
// never a value, so a plan may be logged, stored and shown.
type Change struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Action Action `json:"action"`
	// Fields are the parts of a service's spec an update changes.
	Fields []string `json:"fields,omitempty"`
}

// Plan is what Apply will do, in the order it does it: networks,
// configs and secrets to create, the services in the target's order,
// then removals.
type Plan struct {
	Stack   string   `json:"stack"`
	Changes []Change `json:"changes"`

	desired  *Desired
	services map[string]swarm.Service // running, by name
	removals []removal
}

type removal struct {
	kind, name, id string
}

// PlanOptions say how to order and prune.
type PlanOptions struct {
	// Order names services (their keys in the file) that go first, in
	// this order; the rest follow in file order.
	Order []string
	// Prune removes the stack's services the file no longer lists.
	Prune bool
}

// MakePlan compares d with what runs in the stack's namespace and says
// what Apply would do. It changes nothing.
func MakePlan(ctx context.Context, c Client, d *Desired, o PlanOptions) (*Plan, error) {
	ordered, err := order(d.Services, o.Order)
	if err != nil {
		return nil, err
	}
	d.Services = ordered
	f := filters.NewArgs(filters.Arg("label", NamespaceLabel+"="+d.Name))
	svcs, err := c.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list the stack's services: %w", err)
	}
	nets, err := c.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	configs, err := c.ConfigList(ctx, swarm.ConfigListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list the stack's configs: %w", err)
	}
	secrets, err := c.SecretList(ctx, swarm.SecretListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list the stack's secrets: %w", err)
	}
	for _, want := range d.Networks {
		for _, n := range nets {
			if n.Name == want.Name && n.Labels[NamespaceLabel] != d.Name {
				return nil, fmt.Errorf("network %s exists outside stack %s: refusing to join it", n.Name, d.Name)
			}
		}
	}
	return diff(d, o.Prune, svcs, nets, configs, secrets), nil
}

// diff is the pure part of MakePlan: d against what runs.
func diff(d *Desired, prune bool, svcs []swarm.Service, nets []network.Summary, configs []swarm.Config, secrets []swarm.Secret) *Plan {
	p := &Plan{Stack: d.Name, desired: d, services: map[string]swarm.Service{}}
	netName, netByName := map[string]string{}, map[string]network.Summary{}
	for _, n := range nets {
		netName[n.ID] = n.Name
		netByName[n.Name] = n
	}
	for _, n := range d.Networks {
		if _, ok := netByName[n.Name]; !ok {
			p.Changes = append(p.Changes, Change{Kind: KindNetwork, Name: n.Name, Action: Create})
		}
	}
	haveConfig := map[string]bool{}
	for _, c := range configs {
		haveConfig[c.Spec.Name] = true
	}
	for _, o := range d.Configs {
		if !haveConfig[o.Name] {
			p.Changes = append(p.Changes, Change{Kind: KindConfig, Name: o.Name, Action: Create})
		}
	}
	haveSecret := map[string]bool{}
	for _, s := range secrets {
		haveSecret[s.Spec.Name] = true
	}
	for _, o := range d.Secrets {
		if !haveSecret[o.Name] {
			p.Changes = append(p.Changes, Change{Kind: KindSecret, Name: o.Name, Action: Create})
		}
	}

	for _, s := range svcs {
		p.services[s.Spec.Name] = s
	}
	wanted := map[string]bool{}
	for _, s := range d.Services {
		wanted[s.Spec.Name] = true
		cur, ok := p.services[s.Spec.Name]
		switch {
		case !ok:
			p.Changes = append(p.Changes, Change{Kind: KindService, Name: s.Spec.Name, Action: Create})
		default:
			fields := changedFields(s.Spec, cur.Spec, netName)
			a := Update
			if len(fields) == 0 {
				a = Unchanged
			}
			p.Changes = append(p.Changes, Change{Kind: KindService, Name: s.Spec.Name, Action: a, Fields: fields})
		}
	}
	// What the file dropped, in name order.
	var gone []swarm.Service
	for _, s := range svcs {
		if !wanted[s.Spec.Name] {
			gone = append(gone, s)
		}
	}
	slices.SortFunc(gone, func(a, b swarm.Service) int { return strings.Compare(a.Spec.Name, b.Spec.Name) })
	for _, s := range gone {
		a := Keep
		if prune {
			a = Remove
			p.removals = append(p.removals, removal{KindService, s.Spec.Name, s.ID})
		}
		p.Changes = append(p.Changes, Change{Kind: KindService, Name: s.Spec.Name, Action: a})
	}

	// Configs and secrets the file no longer names go once no service
	// (nor its previous spec, which a rollback returns to) uses them.
	wantConfig, wantSecret := map[string]bool{}, map[string]bool{}
	for _, o := range d.Configs {
		wantConfig[o.Name] = true
	}
	for _, o := range d.Secrets {
		wantSecret[o.Name] = true
	}
	for _, c := range configs {
		if !wantConfig[c.Spec.Name] {
			p.Changes = append(p.Changes, Change{Kind: KindConfig, Name: c.Spec.Name, Action: Remove})
			p.removals = append(p.removals, removal{KindConfig, c.Spec.Name, c.ID})
		}
	}
	for _, s := range secrets {
		if !wantSecret[s.Spec.Name] {
			p.Changes = append(p.Changes, Change{Kind: KindSecret, Name: s.Spec.Name, Action: Remove})
			p.removals = append(p.removals, removal{KindSecret, s.Spec.Name, s.ID})
		}
	}
	return p
}

// order puts the services named in first in that order, then the rest
// in file order. A name the file does not have is an error.
func order(svcs []Service, first []string) ([]Service, error) {
	out := make([]Service, 0, len(svcs))
	taken := map[string]bool{}
	for _, k := range first {
		i := slices.IndexFunc(svcs, func(s Service) bool { return s.Key == k })
		if i < 0 {
			return nil, fmt.Errorf("the deploy target orders service %q, which the stack file does not define", k)
		}
		if !taken[k] {
			out = append(out, svcs[i])
			taken[k] = true
		}
	}
	for _, s := range svcs {
		if !taken[s.Key] {
			out = append(out, s)
		}
	}
	return out, nil
}
