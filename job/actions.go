package job

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/imageref"
	"github.com/swarmhook/swarmhook/tagpolicy"
	"github.com/swarmhook/swarmhook/updater"
)

// errNotManaged means a service action names a service no deploy target
// lists.
var errNotManaged = errors.New("service is not in any deploy target")

// serviceAction runs the jobs that change services without building.
func (r *Runner) serviceAction(ctx context.Context, j *Job, w io.Writer) error {
	switch j.Action {
	case ActionDeploy:
		return r.deployTag(ctx, j, w)
	case ActionPromote:
		return r.promote(ctx, j, w) // job/promote.go
	}
	p, target, s, ok := r.cfg.ServiceTarget(j.Service)
	if !ok {
		return fmt.Errorf("%w: %s", errNotManaged, j.Service)
	}
	timeout := target.Timeout.Duration
	var res updater.Result
	err := r.stage(ctx, j, string(j.Action)+" "+s.Name, w, func() error {
		unlock := r.lockService(s.Name)
		defer unlock()
		var err error
		switch {
		case j.Action == ActionRollback && j.Tag == "":
			res, err = r.d.Updater.Rollback(ctx, s.Name, timeout, w)
		case j.Action == ActionRollback:
			var image string
			if image, err = r.taggedImage(ctx, p, s, j.Tag); err == nil {
				res, err = r.d.Updater.Update(ctx, updater.Request{Service: s.Name, Image: image, Settings: settings(target, s), Timeout: timeout}, w)
			}
		case j.Action == ActionRedeploy:
			res, err = r.d.Updater.Redeploy(ctx, s.Name, timeout, w)
		case j.Action == ActionScale && j.Replicas != nil:
			res, err = r.d.Updater.Scale(ctx, s.Name, *j.Replicas, timeout, w)
		default:
			err = fmt.Errorf("action %q is not a service action", j.Action)
		}
		if res.Service == "" {
			res = updater.Result{Service: s.Name, Outcome: updater.Failed}
			if err != nil {
				res.Message = err.Error()
			}
		}
		return err
	})
	j.Services = append(j.Services, res)
	return err
}

// deployTag deploys an existing tag of every image to the project's
// deploy target for the branch, without building, and then moves the
// branch's -latest to it: -latest names what the branch's services run.
// A failed deploy leaves -latest where it was.
func (r *Runner) deployTag(ctx context.Context, j *Job, w io.Writer) error {
	p, ok := r.cfg.Project(j.Project)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownProject, j.Project)
	}
	target, ok := p.DeployFor(j.Branch)
	if !ok {
		return fmt.Errorf("no deploy target of project %s matches branch %s", p.Name, j.Branch)
	}
	if err := TagDeployable(target, j.Branch); err != nil {
		return err
	}
	component, err := tagpolicy.BranchComponent(j.Branch)
	if err != nil {
		return err
	}
	if err := r.stage(ctx, j, "resolve", w, func() error {
		for _, img := range p.Images {
			digest, err := r.d.Registry.Digest(ctx, img.Name, j.Tag)
			if err != nil {
				return fmt.Errorf("image %s: %w", img.Name, err)
			}
			ref := r.d.Registry.Ref(img.Name, j.Tag)
			j.Images = append(j.Images, Image{Name: img.Name, Tag: j.Tag, LatestTag: tagpolicy.Latest(component), Digest: digest, Ref: imageref.Pinned(ref, digest)})
			fmt.Fprintf(w, "%s is %s\n", ref, digest)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("resolve tag: %w", err)
	}
	if err := r.gateDeploy(ctx, j, p, target, w); err != nil {
		return err
	}
	if err := r.deploy(ctx, j, p, target, w); err != nil {
		return err
	}
	return r.tagLatest(ctx, j, w)
}

// ErrStackTagDeploy means a deploy of a tag was asked of a deploy target
// that deploys a stack.
var ErrStackTagDeploy = errors.New("job: a tag cannot be deployed to a stack target")

// TagDeployable says whether a tag may be deployed to target, branch's:
// not when it deploys a stack. A tag names the images a build pushed,
// not the compose file that build deployed them with, so deploying it
// would have to guess the rest of the stack (the file of today's head
// would be a stack that never ran, the build's commit may be gone). One
// service of the stack can go back to a tag: a rollback with a tag
// changes only its image, as docker service update --image does.
func TagDeployable(target *config.Deploy, branch string) error {
	if target.Stack == nil {
		return nil
	}
	key := "<key>"
	if len(target.Services) > 0 {
		key = target.Services[0].Name
	}
	return fmt.Errorf("%w: branch %s deploys stack %s from the compose file of the commit it builds, and a tag records images, "+
		"not that file: deploy the branch head, or roll one service back to the tag (POST /api/services/%s_%s/rollback with {\"tag\": ...})",
		ErrStackTagDeploy, branch, target.Stack.Name, target.Stack.Name, key)
}

// Do records a job for req and runs fn as that job, now, on the caller's
// goroutine: for actions swarmhook runs on demand and answers with the
// outcome (a prune). The job goes through the same transitions as every
// other, and fn gets its log and may fill in its record; fn's error fails
// it. Do returns the job as it ended, or an error when it could not be
// recorded.
func (r *Runner) Do(ctx context.Context, req Request, fn func(ctx context.Context, j *Job, w io.Writer) error) (*Job, error) {
	j := &Job{Action: req.Action, Trigger: req.Trigger, Status: Queued, Who: req.Who, Project: req.Project, Created: r.d.Now().UTC()}
	if err := r.d.Store.Create(ctx, j, nil); err != nil {
		return nil, fmt.Errorf("record %s job: %w", j.Action, err)
	}
	r.run(ctx, j, nil, fn)
	return j, nil
}
