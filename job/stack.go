package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/stack"
	"github.com/swarmhook/swarmhook/updater"
)

// deployStack plans the target's stack from the compose file in the
// job's work tree dir and applies it; the plan is kept on the job. A
// bad file fails the plan stage before anything changes.
func (r *Runner) deployStack(ctx context.Context, j *Job, p *config.Project, target *config.Deploy, dir string, w io.Writer) error {
	if r.d.Stacks == nil || r.d.Rollout == nil {
		return errors.New("deploy stack: no Swarm client for stacks is configured")
	}
	var plan *stack.Plan
	if err := r.stage(ctx, j, "plan", w, func() error {
		var err error
		plan, err = PlanStack(ctx, r.d.Stacks, target, dir, j.Images, r.d.Registry.Host())
		if err != nil {
			return err
		}
		for _, c := range plan.Changes {
			fmt.Fprintf(w, "plan: %s %s %s %v\n", c.Action, c.Kind, c.Name, c.Fields)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	j.Plan = plan
	var out stack.Outcome
	err := r.stage(ctx, j, "deploy stack "+target.Stack.Name, w, func() error {
		var err error
		out, err = stack.Apply(ctx, r.d.Stacks, r.d.Rollout, plan, stack.ApplyOptions{
			Settings: func(key string) updater.Settings {
				s := config.Service{Name: key}
				for _, ts := range target.Services {
					if ts.Name == key {
						s = ts
					}
				}
				return settings(target, s)
			},
			Timeout:     target.Timeout.Duration,
			RollbackAll: target.OnFailure == config.OnFailureRollbackAll,
			Lock:        r.lockService,
		}, w)
		return err
	})
	j.Services = append(j.Services, out.Services...)
	j.Reverted = append(j.Reverted, out.Reverted...)
	return err
}

// checkStack loads the stack file of the branch's target, if it has
// one, right after the fetch, so a bad file fails the job before any
// build: the project's images stand in with a placeholder digest.
func (r *Runner) checkStack(ctx context.Context, j *Job, p *config.Project, dir string) error {
	target, ok := p.DeployFor(j.Branch)
	if !ok || target.Stack == nil {
		return nil
	}
	images := make([]Image, len(p.Images))
	for i, im := range p.Images {
		images[i] = Image{Name: im.Name, Ref: r.d.Registry.Ref(im.Name, "check") + "@sha256:" + strings.Repeat("0", 64)}
	}
	if _, err := loadStack(ctx, target, dir, images, r.d.Registry.Host()); err != nil {
		return fmt.Errorf("stack file: %w", err)
	}
	return nil
}

// PlanStack loads target's stack file from the work tree dir, with the
// project's images set to images (as built by a job), and plans it
// against the swarm through c. It changes nothing.
func PlanStack(ctx context.Context, c stack.Client, target *config.Deploy, dir string, images []Image, registry string) (*stack.Plan, error) {
	d, err := loadStack(ctx, target, dir, images, registry)
	if err != nil {
		return nil, err
	}
	order := make([]string, len(target.Services))
	for i, s := range target.Services {
		order[i] = s.Name
	}
	return stack.MakePlan(ctx, c, d, stack.PlanOptions{Order: order, Prune: target.Prune})
}

// loadStack reads target's stack file from the work tree dir, with its
// env file and values, the project's images set to images.
func loadStack(ctx context.Context, target *config.Deploy, dir string, images []Image, registry string) (*stack.Desired, error) {
	env := map[string]string{}
	if target.Stack.EnvFile != "" {
		e, err := stack.ReadEnvFile(target.Stack.EnvFile)
		if err != nil {
			return nil, err
		}
		env = e
	}
	maps.Copy(env, target.Stack.Env)
	refs := map[string]string{}
	for _, im := range images {
		refs[im.Name] = im.Ref
	}
	return stack.Load(ctx, stack.Source{Name: target.Stack.Name, WorkTree: dir, File: target.Stack.File,
		Env: env, Images: refs, Registry: registry})
}
