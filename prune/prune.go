package prune

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/imageref"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/registry"
	"github.com/swarmhook/swarmhook/tagpolicy"
	"github.com/swarmhook/swarmhook/updater"
)

// Registry lists and deletes tags. Implementations are safe for
// concurrent use.
type Registry interface {
	Host() string
	Tags(ctx context.Context, repo string) ([]string, error)
	Digest(ctx context.Context, repo, tag string) (string, error)
	// DeleteTag removes repo:tag, which must still point at digest,
	// leaving every other tag on its manifest in place.
	DeleteTag(ctx context.Context, repo, tag, digest string, exclusive bool) error
}

// Swarm lists the images services and tasks need.
type Swarm interface {
	InUse(ctx context.Context) ([]updater.InUse, error)
}

// Store reads the jobs still to run, whose images a prune keeps.
type Store interface {
	Unfinished(ctx context.Context) ([]*job.Job, error)
}

// Jobs records and runs a prune as a job (*job.Runner): Do creates the
// job, runs fn as it with its log, and saves how it ended.
type Jobs interface {
	Do(ctx context.Context, req job.Request, fn func(ctx context.Context, j *job.Job, w io.Writer) error) (*job.Job, error)
}

// Deps are the pruner's collaborators.
type Deps struct {
	Registry Registry
	Swarm    Swarm
	Store    Store
	Jobs     Jobs
	Log      zerolog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// ErrRunning means a prune is already running; runs never overlap.
var ErrRunning = errors.New("prune: a prune is already running")

// Pruner plans and runs prunes. It is safe for concurrent use; at most
// one Run deletes at a time, plans may run alongside.
type Pruner struct {
	cfg *config.Config
	d   Deps
	mu  sync.Mutex // held by the run that deletes
}

// New returns a Pruner for the repositories of cfg's projects.
func New(cfg *config.Config, d Deps) *Pruner {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Pruner{cfg: cfg, d: d}
}

// Report is what one prune planned or did.
type Report struct {
	// Job is the job recording a real run; 0 for a dry run.
	Job    int64 `json:"job,omitempty"`
	DryRun bool  `json:"dry_run"`
	// Repositories are in configuration order.
	Repositories []Repo `json:"repositories"`
}

// Repo is the plan and outcome for one repository.
type Repo struct {
	Repository string `json:"repository"`
	Tags       int    `json:"tags"`
	// Delete lists what the plan deletes; Keep says why each other tag
	// stays.
	Delete []tagpolicy.Decision `json:"delete"`
	Keep   []tagpolicy.Decision `json:"keep"`
	// Deleted and Failed count what a real run did.
	Deleted int      `json:"deleted"`
	Failed  int      `json:"failed,omitempty"`
	Errors  []string `json:"errors,omitempty"`
}

type target struct {
	repo  string
	rules []tagpolicy.Rule
}

// targets are the configured repositories, each once, with the rules of
// the first image that names it.
func (p *Pruner) targets() []target {
	var out []target
	seen := map[string]bool{}
	for i := range p.cfg.Projects {
		pr := &p.cfg.Projects[i]
		for j := range pr.Images {
			img := &pr.Images[j]
			if seen[img.Name] {
				continue
			}
			seen[img.Name] = true
			out = append(out, target{repo: img.Name, rules: p.cfg.RetentionFor(pr, img)})
		}
	}
	return out
}

// Plan works out what a prune would delete now, and deletes nothing.
func (p *Pruner) Plan(ctx context.Context) (*Report, error) {
	rep, _, err := p.plan(ctx)
	if err != nil {
		return nil, err
	}
	rep.DryRun = true
	return rep, nil
}

// listing is one repository's tags with their digests.
type listing struct {
	target
	tags []tagpolicy.Tag
	err  error
}

func (p *Pruner) plan(ctx context.Context) (*Report, []listing, error) {
	prot, err := p.protections(ctx)
	if err != nil {
		return nil, nil, err
	}
	ls := p.list(ctx, p.targets())
	now := p.d.Now()
	rep := &Report{Repositories: make([]Repo, len(ls))}
	for i, l := range ls {
		r := Repo{Repository: l.repo, Tags: len(l.tags)}
		if l.err != nil {
			r.Errors = append(r.Errors, l.err.Error())
		} else {
			pl := tagpolicy.PlanRepo(l.tags, l.rules, prot.forRepo(l.repo), now)
			r.Delete, r.Keep = pl.Delete, pl.Keep
		}
		if r.Delete == nil {
			r.Delete = []tagpolicy.Decision{}
		}
		rep.Repositories[i] = r
	}
	return rep, ls, nil
}

// list reads every target's tags and resolves their digests, at most
// prune.concurrency requests at once over all repositories. A tag that
// cannot be resolved keeps an empty digest, which the planner keeps.
func (p *Pruner) list(ctx context.Context, ts []target) []listing {
	sem := make(chan struct{}, max(1, p.cfg.Prune.Concurrency))
	out := make([]listing, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		out[i].target = t
		wg.Go(func() {
			sem <- struct{}{}
			names, err := p.d.Registry.Tags(ctx, t.repo)
			<-sem
			if errors.Is(err, registry.ErrNotFound) {
				return // never pushed
			}
			if err != nil {
				out[i].err = err
				return
			}
			tags := make([]tagpolicy.Tag, len(names))
			var inner sync.WaitGroup
			for k, n := range names {
				tags[k].Name = n
				inner.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					if d, err := p.d.Registry.Digest(ctx, t.repo, n); err == nil {
						tags[k].Digest = d
					}
				})
			}
			inner.Wait()
			out[i].tags = tags
		})
	}
	wg.Wait()
	return out
}

// Run prunes every configured repository and records the run as a job
// with trigger (schedule or manual) and who. It returns ErrRunning when
// another run is deleting.
func (p *Pruner) Run(ctx context.Context, trigger job.Trigger, who string) (*Report, error) {
	if !p.mu.TryLock() {
		return nil, ErrRunning
	}
	defer p.mu.Unlock()

	var rep *Report
	var runErr error // why the prune could not run, for the caller
	j, err := p.d.Jobs.Do(ctx, job.Request{Action: job.ActionPrune, Trigger: trigger, Who: who}, func(ctx context.Context, j *job.Job, w io.Writer) error {
		fmt.Fprintf(w, "prune of %s\n", p.d.Registry.Host())
		if rep, runErr = p.run(ctx, w); runErr != nil {
			return runErr
		}
		var failed []string
		for _, r := range rep.Repositories {
			j.Pruned = append(j.Pruned, job.Pruned{Repository: r.Repository, Tags: r.Tags, Kept: len(r.Keep), Deleted: r.Deleted, Failed: r.Failed})
			if r.Failed > 0 || len(r.Errors) > 0 {
				failed = append(failed, r.Repository)
			}
		}
		if len(failed) > 0 {
			return errors.New("some tags could not be pruned in " + strings.Join(failed, ", "))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if runErr != nil {
		return nil, runErr
	}
	rep.Job = j.ID
	p.d.Log.Info().Int64("job", j.ID).Str("status", string(j.Status)).Any("pruned", j.Pruned).Msg("prune finished")
	return rep, nil
}

// run plans, checks the plan against what is protected now, and deletes.
func (p *Pruner) run(ctx context.Context, w io.Writer) (*Report, error) {
	_, ls, err := p.plan(ctx)
	if err != nil {
		return nil, err
	}
	// A deploy may have started while the repositories were listed:
	// plan again with what is protected now, over the same listing.
	prot, err := p.protections(ctx)
	if err != nil {
		return nil, err
	}
	now := p.d.Now()
	rep := &Report{Repositories: make([]Repo, len(ls))}
	type del struct {
		repo int
		d    tagpolicy.Decision
	}
	var dels []del
	for i, l := range ls {
		r := Repo{Repository: l.repo, Tags: len(l.tags), Delete: []tagpolicy.Decision{}}
		if l.err != nil {
			r.Errors = append(r.Errors, l.err.Error())
			fmt.Fprintf(w, "%s: cannot list: %v\n", l.repo, l.err)
		} else {
			pl := tagpolicy.PlanRepo(l.tags, l.rules, prot.forRepo(l.repo), now)
			r.Delete, r.Keep = pl.Delete, pl.Keep
			for _, d := range pl.Delete {
				dels = append(dels, del{i, d})
			}
		}
		rep.Repositories[i] = r
	}

	sem := make(chan struct{}, max(1, p.cfg.Prune.Concurrency))
	errs := make([]error, len(dels))
	var wg sync.WaitGroup
	for k, d := range dels {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[k] = p.d.Registry.DeleteTag(ctx, rep.Repositories[d.repo].Repository, d.d.Tag, d.d.Digest, d.d.Exclusive)
		})
	}
	wg.Wait()
	for k, d := range dels {
		r := &rep.Repositories[d.repo]
		if errs[k] != nil {
			r.Failed++
			r.Errors = append(r.Errors, errs[k].Error())
			fmt.Fprintf(w, "%s:%s NOT deleted: %v\n", r.Repository, d.d.Tag, errs[k])
			continue
		}
		r.Deleted++
		fmt.Fprintf(w, "deleted %s:%s (%s)\n", r.Repository, d.d.Tag, d.d.Digest)
	}
	for _, r := range rep.Repositories {
		fmt.Fprintf(w, "%s: %d tags, kept %d, deleted %d, failed %d\n", r.Repository, r.Tags, len(r.Keep), r.Deleted, r.Failed)
	}
	return rep, nil
}

// protections are what must survive, across all repositories.
type protections struct {
	host string
	// digests apply to every repository: a manifest in use anywhere is
	// kept everywhere, which also covers images named by another host
	// alias.
	digests map[string]string
	// tags by repository; under "" for images whose repository could not
	// be told apart (kept in every repository).
	tags map[string]map[string]string
}

func (pr protections) forRepo(repo string) tagpolicy.Protection {
	var p tagpolicy.Protection
	for d, why := range pr.digests {
		p.Protect("", d, why)
	}
	for _, key := range []string{repo, ""} {
		for t, why := range pr.tags[key] {
			p.Protect(t, "", why)
		}
	}
	return p
}

func (pr *protections) add(repo, tag, digest, why string) {
	if digest != "" {
		if _, ok := pr.digests[digest]; !ok {
			pr.digests[digest] = why
		}
	}
	if tag != "" {
		if pr.tags[repo] == nil {
			pr.tags[repo] = map[string]string{}
		}
		if _, ok := pr.tags[repo][tag]; !ok {
			pr.tags[repo][tag] = why
		}
	}
}

// protections reads what Swarm and the job queue need now. Failing to
// read either fails the prune: deleting blind is never an option.
func (p *Pruner) protections(ctx context.Context) (protections, error) {
	pr := protections{host: p.d.Registry.Host(), digests: map[string]string{}, tags: map[string]map[string]string{}}
	inUse, err := p.d.Swarm.InUse(ctx)
	if err != nil {
		return pr, fmt.Errorf("read what services run: %w", err)
	}
	for _, u := range inUse {
		repo, _ := imageref.NameIn(u.Image, pr.host)
		ref := imageref.Split(u.Image)
		pr.add(repo, ref.Tag, ref.Digest, fmt.Sprintf("service %s: %s", u.Service, u.Why))
	}
	jobs, err := p.d.Store.Unfinished(ctx)
	if err != nil {
		return pr, fmt.Errorf("read queued jobs: %w", err)
	}
	for _, j := range jobs {
		why := fmt.Sprintf("job %d (%s, %s) will deploy it", j.ID, j.Action, j.Status)
		if j.Tag != "" {
			pr.add(p.repoOfService(j.Service), j.Tag, "", why)
		}
		for _, im := range j.Images {
			pr.add(im.Name, im.Tag, im.Digest, why)
		}
	}
	return pr, nil
}

// repoOfService is the repository a service action's tag belongs to, or
// "" (every repository) when that is not known from the configuration.
func (p *Pruner) repoOfService(service string) string {
	pr, _, s, ok := p.cfg.ServiceTarget(service)
	if !ok || s.Image == "" {
		return ""
	}
	if slices.ContainsFunc(pr.Images, func(i config.Image) bool { return i.Name == s.Image }) {
		return s.Image
	}
	return ""
}
