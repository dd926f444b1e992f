package job

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/imageref"
	"github.com/swarmhook/swarmhook/updater"
)

// deploy updates the target's services strictly in order. The first
// failure stops it: later services are recorded as skipped and, with
// on_failure: rollback_all, the services this job already changed go back
// to what they ran before, in reverse order.
func (r *Runner) deploy(ctx context.Context, j *Job, p *config.Project, target *config.Deploy, w io.Writer) error {
	return r.deployInOrder(ctx, j, p, target, w, nil)
}

// deployInOrder is deploy with a hook: ready, when not nil, is called
// before service i's update and returns once it may start. An error from
// ready stops the deploy like a failed update, without touching service i.
func (r *Runner) deployInOrder(ctx context.Context, j *Job, p *config.Project, target *config.Deploy, w io.Writer, ready func(i int) error) error {
	if err := r.allExist(ctx, j, target, w); err != nil {
		return err
	}
	for i, s := range target.Services {
		if ready != nil {
			if err := ready(i); err != nil {
				r.stopDeploy(ctx, j, target, target.Services[i:], w)
				return err
			}
		}
		var res updater.Result
		err := r.stage(ctx, j, "deploy "+s.Name, w, func() error {
			image, err := r.imageFor(ctx, j, p, s)
			if err != nil {
				res = updater.Result{Service: s.Name, Outcome: updater.Failed, Message: err.Error()}
				return err
			}
			unlock := r.lockService(s.Name)
			defer unlock()
			res, err = r.d.Updater.Update(ctx, updater.Request{
				Service:  s.Name,
				Image:    image,
				Settings: settings(target, s),
				Timeout:  target.Timeout.Duration,
			}, w)
			return err
		})
		j.Services = append(j.Services, res)
		if err != nil {
			r.stopDeploy(ctx, j, target, target.Services[i+1:], w)
			return fmt.Errorf("deploy %s: %w", s.Name, err)
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
