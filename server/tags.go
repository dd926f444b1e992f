package server

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
	"github.com/swarmhook/swarmhook/tagpolicy"
	"github.com/swarmhook/swarmhook/updater"
)

// Statuses of a rollback candidate: how the build that pushed the tag
// ended. Only a succeeded build ran on every service of its branch.
const (
	TagSucceeded   = "succeeded"
	TagFailed      = "failed"      // the job failed: a build, push or service update
	TagRolledBack  = "rolled_back" // the job failed and a service went back: Swarm's failure action or rollback_all
	TagRunning     = "running"     // its job is still going, or waits to deploy
	TagInterrupted = "interrupted" // swarmhook stopped while its job ran
	TagUnknown     = "unknown"     // no record of the job: older than jobs.keep, or not pushed by swarmhook
)

// RollbackTag is one rollback candidate of a service.
type RollbackTag struct {
	Tag    string `json:"tag"`
	Status string `json:"status"`
	// Branch is the branch whose build pushed it.
	Branch string `json:"branch"`
	// Job is the build that pushed it, when its record is kept.
	Job int64     `json:"job,omitempty"`
	At  time.Time `json:"-"`
}

// jobPages bounds how many pages of a branch's job history are read to
// find the builds that pushed its tags.
const jobPages = 20

// rollbackTags returns the <branch>-<timestamp> tags among tags (of the
// project image repo) that builds of the branches deploying to svc
// pushed, newest first, each with how its build ended. A branch deploys
// to svc when the first deploy target matching it (the one its pushes
// roll out) lists svc, or svc takes promotions from that target's
// environment (config.Project.Reaches), and a tag is its when its
// branch component is that branch's exactly: tags of any other branch
// (Main beside main, feature/x beside feature-x) are never among them.
//
// Which branch a component belongs to: a readable component is its own
// branch (tagpolicy.Readable); a hashed one is the branch of a literal
// deploy target pattern, or of a job that deployed svc, that maps to it.
// A hashed component no such branch maps to is left out.
func (s *Server) rollbackTags(ctx context.Context, p *config.Project, svc config.Service, repo string, tags []string) ([]RollbackTag, error) {
	// A branch deploys to svc also when svc takes promotions of what
	// the branch deploys: its tags are what a promotion put there.
	deploys := func(branch string) bool {
		target, ok := p.DeployFor(branch)
		return ok && p.Reaches(target, svc.Name)
	}
	byComp := map[string][]RollbackTag{}
	for _, t := range tags {
		if comp, at, ok := tagpolicy.ParseTimestamped(t); ok {
			byComp[comp] = append(byComp[comp], RollbackTag{Tag: t, At: at})
		}
	}
	branches := map[string]string{} // component -> branch deploying to svc
	add := func(branch string) {
		if comp, err := tagpolicy.BranchComponent(branch); err == nil && byComp[comp] != nil && deploys(branch) {
			branches[comp] = branch
		}
	}
	globs := false
	for i := range p.Deploy {
		d := &p.Deploy[i]
		switch {
		case d.PromoteFrom != "" || !p.Reaches(d, svc.Name):
		case !d.Branch.Literal():
			globs = true
		default:
			add(d.Branch.String())
		}
	}
	unresolved := 0
	for comp := range byComp {
		if tagpolicy.Readable(comp) {
			add(comp)
		} else if _, ok := branches[comp]; !ok {
			unresolved++
		}
	}
	// A branch a glob target deploys whose name is not readable has a
	// hashed component: the builds that deployed svc name it.
	if globs && unresolved > 0 {
		err := s.eachJob(ctx, store.Filter{Project: p.Name, Service: svc.Name}, func(j *job.Job) bool {
			comp, err := tagpolicy.BranchComponent(j.Branch)
			if _, known := branches[comp]; err == nil && !known && byComp[comp] != nil && j.Action == job.ActionBuild {
				if add(j.Branch); branches[comp] != "" {
					unresolved--
				}
			}
			return unresolved > 0
		})
		if err != nil {
			return nil, err
		}
	}

	var out []RollbackTag
	for comp, branch := range branches {
		cands := byComp[comp]
		index := map[string]int{}
		for i := range cands {
			cands[i].Branch, cands[i].Status = branch, TagUnknown
			index[cands[i].Tag] = i
		}
		left := len(cands)
		err := s.eachJob(ctx, store.Filter{Project: p.Name, Branch: branch}, func(j *job.Job) bool {
			if j.Action != job.ActionBuild {
				return true // a deploy of a tag pushes none
			}
			for _, im := range j.Images {
				if i, ok := index[im.Tag]; ok && im.Name == repo && cands[i].Job == 0 {
					cands[i].Job, cands[i].Status = j.ID, buildStatus(j)
					left--
				}
			}
			return left > 0
		})
		if err != nil {
			return nil, err
		}
		out = append(out, cands...)
	}
	slices.SortFunc(out, func(a, b RollbackTag) int { return cmp.Or(b.At.Compare(a.At), strings.Compare(b.Tag, a.Tag)) })
	// A target that needs an approval is rolled back only to what ran
	// there (see rollbackRequest): only that is offered.
	if _, target, _, ok := s.d.Config.ServiceTarget(svc.Name); ok && target.Approve != nil && len(out) > 0 {
		ran, err := s.ranTags(ctx, p, svc, repo)
		if err != nil {
			return nil, err
		}
		out = slices.DeleteFunc(out, func(t RollbackTag) bool { return !ran[t.Tag] })
	}
	return out, nil
}

// eachJob calls fn on the jobs f selects, newest first, a page at a
// time, until fn returns false or jobPages pages are read.
func (s *Server) eachJob(ctx context.Context, f store.Filter, fn func(*job.Job) bool) error {
	f.Limit = 500
	for range jobPages {
		jobs, err := s.d.Store.List(ctx, f)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if !fn(j) {
				return nil
			}
		}
		if len(jobs) < f.Limit {
			return nil
		}
		f.Before = jobs[len(jobs)-1].ID
	}
	return nil
}

// buildStatus says how the build that pushed a tag ended.
func buildStatus(j *job.Job) string {
	switch j.Status {
	case job.Succeeded:
		return TagSucceeded
	case job.Queued, job.Running, job.Waiting:
		return TagRunning
	case job.Interrupted:
		return TagInterrupted
	}
	if len(j.Reverted) > 0 || slices.ContainsFunc(j.Services, func(r updater.Result) bool { return r.Outcome == updater.RolledBack }) {
		return TagRolledBack
	}
	return TagFailed
}
