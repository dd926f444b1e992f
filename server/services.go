package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/imageref"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/registry"
	"github.com/swarmhook/swarmhook/store"
	"github.com/swarmhook/swarmhook/tagpolicy"
	"github.com/swarmhook/swarmhook/updater"
	"github.com/swarmhook/swarmhook/webhook"
)

// Swarm reads managed services' state.
type Swarm interface {
	Status(ctx context.Context, service string) (updater.Status, error)
}

// Registry reads tags.
type Registry interface {
	Tags(ctx context.Context, repo string) ([]string, error)
	// Host returns the registry's host[:port].
	Host() string
}

// Heads finds a branch's head commit in a project's repository.
type Heads interface {
	Head(ctx context.Context, project *config.Project, ref string) (string, error)
}

// errNoSuchTag is a rollback or deploy to a tag the registry lacks.
var errNoSuchTag = errors.New("no such tag")

// maxWait bounds ?wait=1; a job still running then is answered as it is.
const maxWait = 30 * time.Minute

// action answers 202 with the job id, or with ?wait=1 blocks until the
// job ends (or waits: for an approval, a window) and answers it: 200
// when it succeeded, 409 when it did not, 202 while it waits.
func (s *Server) action(c echo.Context, req job.Request) error {
	if who, ok := c.Get("who").(string); ok {
		req.Who = who
	}
	wait := c.QueryParam("wait") == "1" || c.QueryParam("wait") == "true"
	if wait {
		// A waiting request holds a connection for as long as the job
		// runs: it takes a follower slot, before anything is submitted,
		// so one refused changes nothing.
		release, err := s.followers.acquire(req.Who)
		if err != nil {
			return err
		}
		defer release()
	}
	j, err := s.d.Jobs.Submit(c.Request().Context(), req)
	if err != nil {
		return err
	}
	if !wait {
		return c.JSON(http.StatusAccepted, map[string]int64{"job": j.ID})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), maxWait)
	defer cancel()
	j, err = s.waitJob(ctx, j)
	s.lateAnswer(c)
	switch {
	case err != nil:
		return err
	case !j.Status.Final(): // still running, or waiting for a person or a window
		return c.JSON(http.StatusAccepted, j)
	case j.Status != job.Succeeded:
		return c.JSON(http.StatusConflict, j)
	}
	return c.JSON(http.StatusOK, j)
}

// waitJob reads j until it ends or waits (for an approval, a window, a
// freeze: a person or the clock ends that, not the caller's patience),
// or until ctx ends; it returns the job as last read, and an error only
// when the job could not be read.
func (s *Server) waitJob(ctx context.Context, j *job.Job) (*job.Job, error) {
	for !j.Status.Final() && j.Status != job.Waiting {
		select {
		case <-ctx.Done():
			return j, nil
		case <-time.After(followPoll):
		}
		next, err := s.d.Store.Get(ctx, j.ID)
		if err != nil {
			if ctx.Err() != nil {
				return j, nil
			}
			return nil, err
		}
		j = next
	}
	return j, nil
}

// managed returns the deploy entry of a service named in the config, so
// the API never touches services swarmhook was not given.
func (s *Server) managed(name string) (*config.Project, *config.Deploy, config.Service, error) {
	p, d, svc, ok := s.d.Config.ServiceTarget(name)
	if !ok {
		return nil, nil, config.Service{}, fmt.Errorf("%w: service %q is in no deploy target", errNotFound, name)
	}
	return p, d, svc, nil
}

// rollback: POST /api/services/:service/rollback, body {"tag": "..."} or none.
func (s *Server) rollback(c echo.Context) error {
	var body struct {
		Tag string `json:"tag"`
	}
	if err := bind(c, &body); err != nil {
		return err
	}
	req, err := s.rollbackRequest(c.Request().Context(), c.Param("service"), body.Tag)
	if err != nil {
		return err
	}
	return s.action(c, req)
}

// rollbackRequest is the job that rolls service back to tag (checked in
// the registry), or to Swarm's previous spec when tag is empty.
//
// Rollbacks are never held, so on a target that needs an approval a
// rollback goes only to a tag the service ran before: otherwise a
// rollback token would deploy any build of the branch (one staging
// runs, or one whose deploy was rejected) without the second person.
func (s *Server) rollbackRequest(ctx context.Context, service, tag string) (job.Request, error) {
	p, target, svc, err := s.managed(service)
	if err != nil {
		return job.Request{}, err
	}
	if tag != "" {
		repo, err := s.serviceRepo(ctx, p, svc)
		if err != nil {
			return job.Request{}, err
		}
		offer := func(tags []string) ([]string, error) {
			ts, err := s.rollbackTags(ctx, p, svc, repo, tags)
			names := make([]string, len(ts))
			for i, t := range ts {
				names[i] = t.Tag
			}
			return names, err
		}
		if err := s.checkTag(ctx, repo, tag, offer); err != nil {
			return job.Request{}, err
		}
		if target.Approve != nil {
			if err := s.ranOn(ctx, p, svc, repo, tag); err != nil {
				return job.Request{}, err
			}
		}
	}
	return job.Request{Project: p.Name, Action: job.ActionRollback, Trigger: job.TriggerRollback, Service: svc.Name, Tag: tag}, nil
}

// ranOn fails with errForbidden unless tag of repo ran on svc (see
// ranTags).
func (s *Server) ranOn(ctx context.Context, p *config.Project, svc config.Service, repo, tag string) error {
	ran, err := s.ranTags(ctx, p, svc, repo)
	if err != nil {
		return err
	}
	if !ran[tag] {
		return fmt.Errorf("%w: %s never ran on %s, whose deploys need an approval: a rollback goes back only to what ran there; promote or deploy it instead", errForbidden, tag, svc.Name)
	}
	return nil
}

// ranTags are the tags of repo that jobs which succeeded deployed to
// svc: a build or promotion carrying one among its images, or a deploy
// or rollback to one.
func (s *Server) ranTags(ctx context.Context, p *config.Project, svc config.Service, repo string) (map[string]bool, error) {
	ran := map[string]bool{}
	err := s.eachJob(ctx, store.Filter{Project: p.Name, Service: svc.Name, Status: job.Succeeded}, func(j *job.Job) bool {
		if j.Tag != "" {
			ran[j.Tag] = true
		}
		for _, im := range j.Images {
			if im.Name == repo {
				ran[im.Tag] = true
			}
		}
		return true
	})
	return ran, err
}

// serviceRepo is the project image a service runs: the one its entry
// names, or the one matching the repository it runs now.
func (s *Server) serviceRepo(ctx context.Context, p *config.Project, svc config.Service) (string, error) {
	if svc.Image != "" {
		return svc.Image, nil
	}
	st, err := s.d.Swarm.Status(ctx, svc.Name)
	if err != nil {
		return "", err
	}
	if name, ok := imageref.NameIn(st.Image, s.d.Registry.Host()); ok {
		for _, im := range p.Images {
			if im.Name == name {
				return im.Name, nil
			}
		}
	}
	return "", fmt.Errorf("%w: service %s runs %s, none of project %s's images", errBadRequest, svc.Name, st.Image, p.Name)
}

// checkTag fails with errNoSuchTag when repo has no such tag, naming the
// nearest of the tags offer picks from the repository's: only tags the
// caller could have meant, never another branch's.
func (s *Server) checkTag(ctx context.Context, repo, tag string, offer func(tags []string) ([]string, error)) error {
	if err := webhook.ValidRefName(tag); err != nil || strings.ContainsRune(tag, '/') {
		return fmt.Errorf("%w: %q is not a tag", errBadRequest, tag)
	}
	tags, err := s.tags(ctx, repo)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return err
	}
	if slices.Contains(tags, tag) {
		return nil
	}
	if tags, err = offer(tags); err != nil {
		return err
	}
	return fmt.Errorf("%w: %s has no tag %q; nearest: %s", errNoSuchTag, repo, tag, strings.Join(nearest(tags, tag, 5), ", "))
}

// nearest returns up to n timestamped tags closest in time to want (or
// the newest, when want has no timestamp), newest first.
func nearest(tags []string, want string, n int) []string {
	_, at, ok := tagpolicy.ParseTimestamped(want)
	type cand struct {
		tag string
		at  time.Time
	}
	var cs []cand
	for _, t := range tags {
		if _, ts, ok := tagpolicy.ParseTimestamped(t); ok {
			cs = append(cs, cand{t, ts})
		}
	}
	dist := func(c cand) time.Duration {
		if !ok {
			return -time.Duration(c.at.Unix())
		}
		d := c.at.Sub(at)
		return max(d, -d)
	}
	slices.SortFunc(cs, func(a, b cand) int { return cmp.Compare(dist(a), dist(b)) })
	cs = cs[:min(n, len(cs))]
	slices.SortFunc(cs, func(a, b cand) int { return b.at.Compare(a.at) })
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.tag
	}
	if len(out) == 0 {
		return []string{"(none)"}
	}
	return out
}

// deployProject: POST /api/projects/:project/deploy, {"branch": "main"}
// rebuilds the branch head; with "tag" it deploys that tag, no build.
func (s *Server) deployProject(c echo.Context) error {
	if _, ok := s.d.Config.Project(c.Param("project")); !ok {
		return fmt.Errorf("%w: %q", job.ErrUnknownProject, c.Param("project"))
	}
	var body struct {
		Branch string `json:"branch"`
		Tag    string `json:"tag"`
	}
	if err := bind(c, &body); err != nil {
		return err
	}
	req, err := s.deployRequest(c.Request().Context(), c.Param("project"), body.Branch, body.Tag)
	if err != nil {
		return err
	}
	return s.action(c, req)
}

// deployRequest is the job that deploys tag of branch (checked in the
// registry) or, without a tag, builds the branch's head.
func (s *Server) deployRequest(ctx context.Context, project, branch, tag string) (job.Request, error) {
	p, ok := s.d.Config.Project(project)
	if !ok {
		return job.Request{}, fmt.Errorf("%w: %q", job.ErrUnknownProject, project)
	}
	if err := webhook.ValidRefName(branch); err != nil {
		return job.Request{}, fmt.Errorf("%w: branch: %v", errBadRequest, err)
	}
	if tag != "" {
		target, ok := p.DeployFor(branch)
		if !ok {
			return job.Request{}, fmt.Errorf("%w: no deploy target of %s matches branch %s", errBadRequest, p.Name, branch)
		}
		if err := job.TagDeployable(target, branch); err != nil {
			return job.Request{}, fmt.Errorf("%w: %w", errBadRequest, err)
		}
		comp, err := tagpolicy.BranchComponent(branch)
		if err != nil {
			return job.Request{}, fmt.Errorf("%w: branch: %v", errBadRequest, err)
		}
		offer := func(tags []string) ([]string, error) {
			var mine []string
			for _, t := range tags {
				if c, _, ok := tagpolicy.ParseTimestamped(t); ok && c == comp {
					mine = append(mine, t)
				}
			}
			return mine, nil
		}
		for _, im := range p.Images {
			if err := s.checkTag(ctx, im.Name, tag, offer); err != nil {
				return job.Request{}, err
			}
		}
		return job.Request{Project: p.Name, Action: job.ActionDeploy, Trigger: job.TriggerManual, Branch: branch, Tag: tag}, nil
	}
	ref := "refs/heads/" + branch
	var commit string
	err := callUpstream(ctx, s.limits.UpstreamTimeout,
		upstreamError{service: "Git host", host: gitHost(p.Repo), op: "find the head of " + branch, redact: []string{p.Git.Token, urlPassword(p.Repo)}},
		func(ctx context.Context) (err error) {
			commit, err = s.d.Heads.Head(ctx, p, ref)
			return err
		})
	if err != nil {
		return job.Request{}, err
	}
	return job.Request{Project: p.Name, Action: job.ActionBuild, Trigger: job.TriggerManual, Ref: ref, Branch: branch, Commit: commit}, nil
}

// redeploy: POST /api/services/:service/redeploy, a rolling restart.
func (s *Server) redeploy(c echo.Context) error {
	req, err := s.redeployRequest(c.Param("service"))
	if err != nil {
		return err
	}
	return s.action(c, req)
}

// redeployRequest is the job that restarts service on its digest.
func (s *Server) redeployRequest(service string) (job.Request, error) {
	p, _, svc, err := s.managed(service)
	if err != nil {
		return job.Request{}, err
	}
	return job.Request{Project: p.Name, Action: job.ActionRedeploy, Trigger: job.TriggerManual, Service: svc.Name}, nil
}

// scale: POST /api/services/:service/scale, {"replicas": 5}.
func (s *Server) scale(c echo.Context) error {
	if _, _, _, err := s.managed(c.Param("service")); err != nil {
		return err
	}
	var body struct {
		Replicas *uint64 `json:"replicas"`
	}
	if err := bind(c, &body); err != nil {
		return err
	}
	req, err := s.scaleRequest(c.Param("service"), body.Replicas)
	if err != nil {
		return err
	}
	return s.action(c, req)
}

// scaleRequest is the job that sets service's replica count.
func (s *Server) scaleRequest(service string, replicas *uint64) (job.Request, error) {
	p, _, svc, err := s.managed(service)
	if err != nil {
		return job.Request{}, err
	}
	if replicas == nil || *replicas > 1000 {
		return job.Request{}, fmt.Errorf("%w: replicas must be given, 0 to 1000", errBadRequest)
	}
	return job.Request{Project: p.Name, Action: job.ActionScale, Trigger: job.TriggerManual, Service: svc.Name, Replicas: replicas}, nil
}

// listServices: GET /api/services, every managed service's state: the
// services image-only targets list and those running in stack targets'
// namespaces (see job.ManagedServices).
func (s *Server) listServices(c echo.Context) error {
	ctx := c.Request().Context()
	var names []string
	err := callUpstream(ctx, s.limits.UpstreamTimeout, upstreamError{service: "Swarm", host: "manager", op: "list the stacks' services"},
		func(ctx context.Context) (err error) {
			names, err = job.ManagedServices(ctx, s.d.Config, s.d.Stacks)
			return err
		})
	if err != nil {
		return err
	}
	out := make([]updater.Status, 0, len(names))
	for _, name := range names {
		st, err := s.d.Swarm.Status(ctx, name)
		if err != nil {
			st = updater.Status{Name: name, UpdateState: "unknown: " + err.Error()}
		}
		out = append(out, st)
	}
	return c.JSON(http.StatusOK, map[string]any{"services": out})
}

// serviceTags: GET /api/services/:service/tags, rollback candidates
// newest first: the tags that builds of the branches deploying to the
// service pushed, each with how its build ended (see rollbackTags).
func (s *Server) serviceTags(c echo.Context) error {
	ctx := c.Request().Context()
	p, _, svc, err := s.managed(c.Param("service"))
	if err != nil {
		return err
	}
	repo, err := s.serviceRepo(ctx, p, svc)
	if err != nil {
		return err
	}
	tags, err := s.tags(ctx, repo)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return err
	}
	ts, err := s.rollbackTags(ctx, p, svc, repo, tags)
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []RollbackTag{}
	}
	return c.JSON(http.StatusOK, map[string]any{"service": svc.Name, "repository": repo, "tags": ts})
}
