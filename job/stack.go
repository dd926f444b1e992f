package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/imageref"
	"github.com/swarmhook/swarmhook/registry"
	"github.com/swarmhook/swarmhook/stack"
	"github.com/swarmhook/swarmhook/tagpolicy"
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
			if len(c.Fields) > 0 {
				fmt.Fprintf(w, "plan: %s %s %s: %s\n", c.Action, c.Kind, c.Name, strings.Join(c.Fields, ", "))
			} else {
				fmt.Fprintf(w, "plan: %s %s %s\n", c.Action, c.Kind, c.Name)
			}
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

// ErrNoStack means a plan was asked for a branch whose deploy target
// deploys no stack.
var ErrNoStack = errors.New("job: no deploy target with a stack matches the branch")

// PlanBranch plans the stack of project's deploy target for branch at
// the branch's head, changing nothing: the commit is checked out into a
// scratch directory, and the project's images stand at the branch's
// -latest (a push would build new digests, so their services would
// update too). A bad stack file is a *stack.FileError.
func (r *Runner) PlanBranch(ctx context.Context, project, branch string) (*stack.Plan, error) {
	p, ok := r.cfg.Project(project)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownProject, project)
	}
	target, ok := p.DeployFor(branch)
	if !ok || target.Stack == nil {
		return nil, fmt.Errorf("%w: %s of %s", ErrNoStack, branch, project)
	}
	if r.d.Stacks == nil {
		return nil, errors.New("plan: no Swarm client for stacks is configured")
	}
	component, err := tagpolicy.BranchComponent(branch)
	if err != nil {
		return nil, err
	}
	repo, err := repoOf(p)
	if err != nil {
		return nil, err
	}
	ref := "refs/heads/" + branch
	head, err := r.d.Source.Head(ctx, repo, ref)
	if err != nil {
		return nil, fmt.Errorf("plan: head of %s: %w", branch, err)
	}
	if err := os.MkdirAll(r.workDir, 0o700); err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	dir, err := os.MkdirTemp(r.workDir, "plan-")
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	defer os.RemoveAll(dir)
	tree := filepath.Join(dir, "tree")
	if _, err := r.d.Source.Checkout(ctx, repo, ref, head, tree, io.Discard); err != nil {
		return nil, fmt.Errorf("plan: check out %s: %w", branch, err)
	}
	latest := tagpolicy.Latest(component)
	images := make([]Image, len(p.Images))
	for i, im := range p.Images {
		images[i] = Image{Name: im.Name, Ref: r.d.Registry.Ref(im.Name, latest)}
		// A branch never built has no -latest: its services would get a
		// first build. Any other failure would plan every service of the
		// image as changed, so it is the plan's error.
		switch d, err := r.d.Registry.Digest(ctx, im.Name, latest); {
		case err == nil:
			images[i].Ref = imageref.Pinned(images[i].Ref, d)
		case !errors.Is(err, registry.ErrNotFound):
			return nil, fmt.Errorf("plan: digest of %s:%s: %w", im.Name, latest, err)
		}
	}
	return PlanStack(ctx, r.d.Stacks, target, tree, images, r.d.Registry.Host())
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

// CheckEnvFiles reads the env_file of every stack target of cfg, so
// that one missing or malformed stops the start naming its key, rather
// than failing each job of its branch after the build. The files are
// read again by each job: this checks, it keeps nothing.
func CheckEnvFiles(cfg *config.Config) error {
	for i, p := range cfg.Projects {
		for j, d := range p.Deploy {
			if d.Stack == nil || d.Stack.EnvFile == "" {
				continue
			}
			if _, err := stack.ReadEnvFile(d.Stack.EnvFile); err != nil {
				return fmt.Errorf("projects[%d].deploy[%d].stack.env_file: %w", i, j, err)
			}
		}
	}
	return nil
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
