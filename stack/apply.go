package stack

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/swarmhook/swarmhook/updater"
)

// Rollout creates and updates services and waits for Swarm to converge;
// *updater.Updater satisfies it.
type Rollout interface {
	Create(ctx context.Context, c updater.Creator, spec swarm.ServiceSpec, s updater.Settings, timeout time.Duration, log io.Writer) (updater.Result, error)
	Replace(ctx context.Context, spec swarm.ServiceSpec, s updater.Settings, timeout time.Duration, log io.Writer) (updater.Result, error)
	Rollback(ctx context.Context, service string, timeout time.Duration, log io.Writer) (updater.Result, error)
}

// ApplyOptions are the deploy target's rollout settings.
type ApplyOptions struct {
	// Settings are the rolling-update settings of service key.
	Settings func(key string) updater.Settings
	// Timeout bounds each service's update.
	Timeout time.Duration
	// RollbackAll returns the services this plan changed to their
	// previous spec, newest first, when one fails; created ones are
	// removed.
	RollbackAll bool
	// Lock, when set, is held around each service's change, so no other
	// job changes it at the same time.
	Lock func(service string) (unlock func())
}

// Outcome is what Apply did: one result per service of the file in
// order (the same outcomes as image updates), and those rollback_all
// reverted.
type Outcome struct {
	Services []updater.Result
	Reverted []updater.Result
}

// Apply carries out p: networks, configs and secrets first, then each
// service in order, rolling and awaited; the first that fails stops the
// plan (later services are Skipped) and nothing is removed. After every
// service moved, it removes pruned services, then the configs and
// secrets no service's spec or previous spec names.
func Apply(ctx context.Context, c Client, roll Rollout, p *Plan, o ApplyOptions, w io.Writer) (Outcome, error) {
	var out Outcome
	d := p.desired
	for _, ch := range p.Changes {
		if ch.Action != Create || ch.Kind == KindService {
			continue
		}
		if err := createObject(ctx, c, d, ch); err != nil {
			return out, err
		}
		fmt.Fprintf(w, "stack %s: created %s %s\n", d.Name, ch.Kind, ch.Name)
	}
	ids, err := objectIDs(ctx, c, d.Name)
	if err != nil {
		return out, err
	}
	for i, s := range d.Services {
		ch := p.Changes[slices.IndexFunc(p.Changes, func(c Change) bool { return c.Kind == KindService && c.Name == s.Spec.Name })]
		res, err := applyService(ctx, c, roll, s, ch, ids, o, w)
		out.Services = append(out.Services, res)
		if err != nil {
			for _, rest := range d.Services[i+1:] {
				out.Services = append(out.Services, updater.Result{Service: rest.Spec.Name, Outcome: updater.Skipped})
			}
			if o.RollbackAll {
				out.Reverted = revert(ctx, c, roll, p, out.Services, o, w)
			}
			return out, fmt.Errorf("deploy %s: %w", s.Spec.Name, err)
		}
	}
	for _, r := range p.removals {
		if r.kind != KindService {
			continue
		}
		if err := c.ServiceRemove(ctx, r.id); err != nil {
			return out, fmt.Errorf("remove service %s: %w", r.name, err)
		}
		fmt.Fprintf(w, "stack %s: removed service %s (prune: true)\n", d.Name, r.name)
	}
	return out, removeUnused(ctx, c, p, w)
}

func applyService(ctx context.Context, c Client, roll Rollout, s Service, ch Change, ids map[string]string, o ApplyOptions, w io.Writer) (updater.Result, error) {
	if ch.Action == Unchanged {
		fmt.Fprintf(w, "service %s: unchanged\n", s.Spec.Name)
		img := ""
		if s.Spec.TaskTemplate.ContainerSpec != nil {
			img = s.Spec.TaskTemplate.ContainerSpec.Image
		}
		return updater.Result{Service: s.Spec.Name, Outcome: updater.Unchanged, Image: img, Previous: img}, nil
	}
	spec, err := withIDs(s.Spec, ids)
	if err != nil {
		return updater.Result{Service: s.Spec.Name, Outcome: updater.Failed, Message: err.Error()}, err
	}
	if o.Lock != nil {
		defer o.Lock(s.Spec.Name)()
	}
	settings := updater.Settings{}
	if o.Settings != nil {
		settings = o.Settings(s.Key)
	}
	if ch.Action == Create {
		return roll.Create(ctx, c, spec, settings, o.Timeout, w)
	}
	fmt.Fprintf(w, "service %s: changes %v\n", s.Spec.Name, ch.Fields)
	return roll.Replace(ctx, spec, settings, o.Timeout, w)
}

// withIDs fills in the IDs of the configs and secrets spec names.
func withIDs(spec swarm.ServiceSpec, ids map[string]string) (swarm.ServiceSpec, error) {
	cs := *spec.TaskTemplate.ContainerSpec
	cs.Configs = slices.Clone(cs.Configs)
	for i, r := range cs.Configs {
		id, ok := ids[KindConfig+"/"+r.ConfigName]
		if !ok {
			return spec, fmt.Errorf("config %s does not exist", r.ConfigName)
		}
		rc := *r
		rc.ConfigID = id
		cs.Configs[i] = &rc
	}
	cs.Secrets = slices.Clone(cs.Secrets)
	for i, r := range cs.Secrets {
		id, ok := ids[KindSecret+"/"+r.SecretName]
		if !ok {
			return spec, fmt.Errorf("secret %s does not exist", r.SecretName)
		}
		rc := *r
		rc.SecretID = id
		cs.Secrets[i] = &rc
	}
	spec.TaskTemplate.ContainerSpec = &cs
	return spec, nil
}

func createObject(ctx context.Context, c Client, d *Desired, ch Change) error {
	switch ch.Kind {
	case KindNetwork:
		for _, n := range d.Networks {
			if n.Name == ch.Name {
				_, err := c.NetworkCreate(ctx, n.Name, network.CreateOptions{Driver: n.Driver, Scope: "swarm",
					Attachable: n.Attachable, Internal: n.Internal, Labels: n.Labels})
				if err != nil {
					return fmt.Errorf("create network %s: %w", n.Name, err)
				}
			}
		}
	case KindConfig:
		for _, o := range d.Configs {
			if o.Name == ch.Name {
				if _, err := c.ConfigCreate(ctx, swarm.ConfigSpec{Annotations: swarm.Annotations{Name: o.Name, Labels: o.Labels}, Data: o.Data}); err != nil {
					return fmt.Errorf("create config %s: %w", o.Name, err)
				}
			}
		}
	case KindSecret:
		for _, o := range d.Secrets {
			if o.Name == ch.Name {
				if _, err := c.SecretCreate(ctx, swarm.SecretSpec{Annotations: swarm.Annotations{Name: o.Name, Labels: o.Labels}, Data: o.Data}); err != nil {
					return fmt.Errorf("create secret %s: %w", o.Name, err)
				}
			}
		}
	}
	return nil
}

// objectIDs maps "config/<name>" and "secret/<name>" to IDs.
func objectIDs(ctx context.Context, c Client, stack string) (map[string]string, error) {
	f := filters.NewArgs(filters.Arg("label", NamespaceLabel+"="+stack))
	ids := map[string]string{}
	configs, err := c.ConfigList(ctx, swarm.ConfigListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list the stack's configs: %w", err)
	}
	for _, x := range configs {
		ids[KindConfig+"/"+x.Spec.Name] = x.ID
	}
	secrets, err := c.SecretList(ctx, swarm.SecretListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list the stack's secrets: %w", err)
	}
	for _, x := range secrets {
		ids[KindSecret+"/"+x.Spec.Name] = x.ID
	}
	return ids, nil
}

// removeUnused removes the configs and secrets the plan retires that no
// service of the swarm names in its spec or its previous spec.
func removeUnused(ctx context.Context, c Client, p *Plan, w io.Writer) error {
	svcs, err := c.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	used := map[string]bool{}
	for _, s := range svcs {
		for _, spec := range []*swarm.ServiceSpec{&s.Spec, s.PreviousSpec} {
			if spec == nil || spec.TaskTemplate.ContainerSpec == nil {
				continue
			}
			for _, r := range spec.TaskTemplate.ContainerSpec.Configs {
				used[r.ConfigID] = true
			}
			for _, r := range spec.TaskTemplate.ContainerSpec.Secrets {
				used[r.SecretID] = true
			}
		}
	}
	for _, r := range p.removals {
		if r.kind == KindService {
			continue
		}
		if used[r.id] {
			fmt.Fprintf(w, "stack %s: keeping %s %s: a service or its rollback target still uses it\n", p.Stack, r.kind, r.name)
			continue
		}
		var err error
		if r.kind == KindConfig {
			err = c.ConfigRemove(ctx, r.id)
		} else {
			err = c.SecretRemove(ctx, r.id)
		}
		if err != nil {
			return fmt.Errorf("remove %s %s: %w", r.kind, r.name, err)
		}
		fmt.Fprintf(w, "stack %s: removed %s %s\n", p.Stack, r.kind, r.name)
	}
	return nil
}

// revert undoes, newest first, what this plan did to services: an
// updated one goes back to its previous spec, a created one is removed.
func revert(ctx context.Context, c Client, roll Rollout, p *Plan, done []updater.Result, o ApplyOptions, w io.Writer) []updater.Result {
	ctx = context.WithoutCancel(ctx)
	var out []updater.Result
	for i := len(done) - 1; i >= 0; i-- {
		res := done[i]
		if res.Outcome != updater.Updated {
			continue
		}
		if _, existed := p.services[res.Service]; !existed {
			fmt.Fprintf(w, "rollback_all: removing %s, which this plan created\n", res.Service)
			err := c.ServiceRemove(ctx, res.Service)
			r := updater.Result{Service: res.Service, Outcome: updater.RolledBack}
			if err != nil {
				r.Outcome, r.Message = updater.Failed, err.Error()
			}
			out = append(out, r)
			continue
		}
		fmt.Fprintf(w, "rollback_all: returning %s to its previous spec\n", res.Service)
		var unlock func()
		if o.Lock != nil {
			unlock = o.Lock(res.Service)
		}
		r, _ := roll.Rollback(ctx, res.Service, o.Timeout, w)
		if unlock != nil {
			unlock()
		}
		out = append(out, r)
	}
	return out
}
