package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/imageref"
	"github.com/swarmhook/swarmhook/updater"
)

// deploy updates the target's services in order, the members of a group
// at the same time. The first failure stops it after its group: later
// services are recorded as skipped and, with on_failure: rollback_all, the
// services this job already changed go back to what they ran before, in
// reverse order.
func (r *Runner) deploy(ctx context.Context, j *Job, p *config.Project, target *config.Deploy, w io.Writer) error {
	return r.deployInOrder(ctx, j, p, target, w, nil)
}

// deployInOrder is deploy with a hook: ready, when not nil, is called
// before service i's update (i indexes target.Services) and returns once it
// may start. An error from ready stops the deploy like a failed update,
// without touching service i or the rest of its group.
func (r *Runner) deployInOrder(ctx context.Context, j *Job, p *config.Project, target *config.Deploy, w io.Writer, ready func(i int) error) error {
	if err := r.allExist(ctx, j, target, w); err != nil {
		return err
	}
	return r.rollGroups(ctx, j, target, target.Services.Groups(), w, func(ctx context.Context, s config.Service, w io.Writer) (updater.Result, error) {
		image, err := r.imageFor(ctx, j, p, s)
		if err != nil {
			return updater.Result{Service: s.Name, Outcome: updater.Failed, Message: err.Error()}, err
		}
		unlock := r.lockService(s.Name)
		defer unlock()
		return r.d.Updater.Update(ctx, updater.Request{
			Service:  s.Name,
			Image:    image,
			Settings: settings(target, s),
			Timeout:  target.Timeout.Duration,
			PrePull:  target.PrePull,
		}, w)
	}, ready)
}

// rollFunc updates one service, writing its progress to w.
type rollFunc func(ctx context.Context, s config.Service, w io.Writer) (updater.Result, error)

// rollGroups rolls groups of services in order with roll: one group's
// members at the same time (a group of one as before, in a stage of its
// own), the next group once every member of this one ended. Each result
// goes into j.Services in the groups' order. A failure lets the rest of its
// group finish, then stops: later groups are skipped and on_failure
// applies to what the job changed. ready, when not nil, is called with the
// flat index of each member (counting through all groups) before its
// group starts. Groups come from the deploy target here; anything else
// that rolls services in an order of its own can pass its own.
func (r *Runner) rollGroups(ctx context.Context, j *Job, target *config.Deploy, groups [][]config.Service, w io.Writer, roll rollFunc, ready func(i int) error) error {
	var flat []config.Service
	for _, g := range groups {
		flat = append(flat, g...)
	}
	next := 0 // flat index of the group's first member
	for _, g := range groups {
		if ready != nil {
			for k := range g {
				if err := ready(next + k); err != nil {
					r.stopDeploy(ctx, j, target, flat[next:], w)
					return err
				}
			}
		}
		names := make([]string, len(g))
		for k, s := range g {
			names[k] = s.Name
		}
		results := make([]updater.Result, len(g))
		errs := make([]error, len(g))
		r.stage(ctx, j, "deploy "+strings.Join(names, ", "), w, func() error {
			if len(g) == 1 {
				results[0], errs[0] = roll(ctx, g[0], w)
				return errs[0]
			}
			fmt.Fprintf(w, "rolling %s at the same time\n", strings.Join(names, ", "))
			lw := &lockedWriter{w: w}
			var wg sync.WaitGroup
			for k, s := range g {
				wg.Add(1)
				go func() {
					defer wg.Done()
					pw := &linePrefixer{w: lw, prefix: s.Name + ": "}
					results[k], errs[k] = roll(ctx, s, pw)
					pw.Flush()
				}()
			}
			wg.Wait()
			return errors.Join(errs...)
		})
		next += len(g)
		for k, res := range results {
			if res.Service == "" {
				res.Service = g[k].Name
			}
			j.Services = append(j.Services, res)
		}
		for k, err := range errs {
			if err != nil {
				r.stopDeploy(ctx, j, target, flat[next:], w)
				return fmt.Errorf("deploy %s: %w", g[k].Name, err)
			}
		}
	}
	return nil
}

// allExist fails a deploy whose target names a service that does not
// exist before it changes any: the first missing one is recorded as
// failed, the others as skipped. Without Deps.Services each update finds
// out for itself.
func (r *Runner) allExist(ctx context.Context, j *Job, target *config.Deploy, w io.Writer) error {
	if r.d.Services == nil {
		return nil
	}
	names := make([]string, len(target.Services))
	for i, s := range target.Services {
		names[i] = s.Name
	}
	missing, err := r.d.Services.Missing(ctx, names)
	if err != nil {
		return fmt.Errorf("check the services of the deploy target: %w", err)
	}
	if len(missing) == 0 {
		return nil
	}
	err = &updater.NoServiceError{Service: missing[0]}
	for _, s := range target.Services {
		res := updater.Result{Service: s.Name, Outcome: updater.Skipped}
		if s.Name == missing[0] {
			res.Outcome, res.Message = updater.Failed, err.Error()
		}
		j.Services = append(j.Services, res)
	}
	fmt.Fprintf(w, "%s: nothing deployed\n", err)
	return fmt.Errorf("deploy %s: %w", missing[0], err)
}

// stopDeploy records the services a failure left untouched as skipped
// and, with on_failure: rollback_all, reverts the ones already changed.
func (r *Runner) stopDeploy(ctx context.Context, j *Job, target *config.Deploy, rest []config.Service, w io.Writer) {
	for _, s := range rest {
		j.Services = append(j.Services, updater.Result{Service: s.Name, Outcome: updater.Skipped})
	}
	if target.OnFailure == config.OnFailureRollbackAll {
		r.revert(ctx, j, target, w)
	}
}

// revert returns the services this job updated to their previous images,
// newest change first. It runs even when the job's context is spent.
func (r *Runner) revert(ctx context.Context, j *Job, target *config.Deploy, w io.Writer) {
	ctx = context.WithoutCancel(ctx)
	done := slices.Clone(j.Services)
	slices.Reverse(done)
	for _, res := range done {
		if res.Outcome != updater.Updated || res.Previous == "" {
			continue
		}
		s := config.Service{Name: res.Service}
		for _, ts := range target.Services {
			if ts.Name == res.Service {
				s = ts
			}
		}
		r.stage(ctx, j, "revert "+s.Name, w, func() error {
			unlock := r.lockService(s.Name)
			defer unlock()
			fmt.Fprintf(w, "rollback_all: returning %s to %s\n", s.Name, res.Previous)
			back, err := r.d.Updater.Update(ctx, updater.Request{Service: s.Name, Image: res.Previous, Settings: settings(target, s), Timeout: target.Timeout.Duration}, w)
			j.Reverted = append(j.Reverted, back)
			return err
		})
	}
}

// imageFor picks the pushed image a service gets: the one it names, or
// the one whose repository it runs now.
func (r *Runner) imageFor(ctx context.Context, j *Job, p *config.Project, s config.Service) (string, error) {
	name, err := r.imageName(ctx, p, s)
	if err != nil {
		return "", err
	}
	for _, im := range j.Images {
		if im.Name == name {
			return im.Ref, nil
		}
	}
	return "", fmt.Errorf("service %s: image %s was not built", s.Name, name)
}

// imageName says which of the project's images service s runs: the one
// it names, or the one whose repository it runs now.
func (r *Runner) imageName(ctx context.Context, p *config.Project, s config.Service) (string, error) {
	if s.Image != "" {
		return s.Image, nil
	}
	cur, err := r.d.Updater.CurrentImage(ctx, s.Name)
	if err != nil {
		return "", err
	}
	if name, ok := imageref.NameIn(cur, r.d.Registry.Host()); ok {
		for _, im := range p.Images {
			if im.Name == name {
				return im.Name, nil
			}
		}
	}
	return "", fmt.Errorf("service %s runs %s, which is none of project %s's images: name one with image:", s.Name, cur, p.Name)
}

// taggedImage resolves the image service s should run for tag: the
// repository it runs now, pinned to the tag's digest.
func (r *Runner) taggedImage(ctx context.Context, p *config.Project, s config.Service, tag string) (string, error) {
	name, err := r.imageName(ctx, p, s)
	if err != nil {
		return "", err
	}
	digest, err := r.d.Registry.Digest(ctx, name, tag)
	if err != nil {
		return "", err
	}
	return imageref.Pinned(r.d.Registry.Ref(name, tag), digest), nil
}

// settings turns the config's update settings for service s of target d
// into the updater's.
func settings(d *config.Deploy, s config.Service) updater.Settings {
	out := updater.Settings{Pace: pace(d.UpdateFor(s), updater.Pace{})}
	if rb := d.Rollback; rb != (config.Update{}) {
		out.Rollback = pace(rb, updater.Pace{Parallelism: out.Parallelism, FailureAction: string(config.FailureActionPause), Order: out.Order})
	}
	return out
}

// pace converts one update section, taking unset keys from defaults.
func pace(u config.Update, defaults updater.Pace) updater.Pace {
	p := updater.Pace{Delay: u.Delay.Duration, FailureAction: string(u.FailureAction), Order: string(u.Order),
		Monitor: u.Monitor.Duration, MaxFailureRatio: u.MaxFailureRatio, Parallelism: defaults.Parallelism}
	if u.Parallelism != nil {
		p.Parallelism = *u.Parallelism
	}
	if p.FailureAction == "" {
		p.FailureAction = defaults.FailureAction
	}
	if p.Order == "" {
		p.Order = defaults.Order
	}
	return p
}
