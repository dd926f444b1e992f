package metrics

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/registry"
	"github.com/swarmhook/swarmhook/stack"
	"github.com/swarmhook/swarmhook/updater"
)

// counted reports whether err is worth counting: a cancelled call (the
// job was superseded or swarmhook is stopping) and a tag that does not
// exist are answers, not faults.
func counted(err error) bool {
	return err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, registry.ErrNotFound)
}

// Builder counts the errors of b's builds and pushes as engine errors.
func (m *Metrics) Builder(b job.ImageBuilder) job.ImageBuilder { return countingBuilder{b, m} }

type countingBuilder struct {
	job.ImageBuilder
	m *Metrics
}

func (c countingBuilder) Build(ctx context.Context, req builder.Request, log io.Writer) (string, error) {
	id, err := c.ImageBuilder.Build(ctx, req, log)
	if counted(err) {
		c.m.EngineError("build")
	}
	return id, err
}

func (c countingBuilder) Push(ctx context.Context, ref string, log io.Writer) (string, error) {
	d, err := c.ImageBuilder.Push(ctx, ref, log)
	if counted(err) {
		c.m.EngineError("push")
	}
	return d, err
}

// Tagger counts the errors of t's registry calls.
func (m *Metrics) Tagger(t job.Tagger) job.Tagger { return countingTagger{t, m} }

type countingTagger struct {
	job.Tagger
	m *Metrics
}

func (c countingTagger) Retag(ctx context.Context, repo, from, to, want string, log io.Writer) (string, error) {
	d, err := c.Tagger.Retag(ctx, repo, from, to, want, log)
	if counted(err) {
		c.m.RegistryError("retag")
	}
	return d, err
}

func (c countingTagger) Digest(ctx context.Context, repo, tag string) (string, error) {
	d, err := c.Tagger.Digest(ctx, repo, tag)
	if counted(err) {
		c.m.RegistryError("digest")
	}
	return d, err
}

// Updater counts the errors of u's Swarm calls as engine errors. A
// service that failed to converge is counted too: Swarm reported it.
func (m *Metrics) Updater(u job.ServiceUpdater) job.ServiceUpdater { return countingUpdater{u, m} }

type countingUpdater struct {
	u job.ServiceUpdater
	m *Metrics
}

func (c countingUpdater) count(op string, err error) {
	if counted(err) {
		c.m.EngineError(op)
	}
}

func (c countingUpdater) CurrentImage(ctx context.Context, service string) (string, error) {
	img, err := c.u.CurrentImage(ctx, service)
	c.count("inspect", err)
	return img, err
}

func (c countingUpdater) Update(ctx context.Context, req updater.Request, log io.Writer) (updater.Result, error) {
	r, err := c.u.Update(ctx, req, log)
	c.count("update", err)
	return r, err
}

func (c countingUpdater) Rollback(ctx context.Context, service string, timeout time.Duration, log io.Writer) (updater.Result, error) {
	r, err := c.u.Rollback(ctx, service, timeout, log)
	c.count("rollback", err)
	return r, err
}

func (c countingUpdater) Redeploy(ctx context.Context, service string, timeout time.Duration, log io.Writer) (updater.Result, error) {
	r, err := c.u.Redeploy(ctx, service, timeout, log)
	c.count("redeploy", err)
	return r, err
}

func (c countingUpdater) Scale(ctx context.Context, service string, replicas uint64, timeout time.Duration, log io.Writer) (updater.Result, error) {
	r, err := c.u.Scale(ctx, service, replicas, timeout, log)
	c.count("scale", err)
	return r, err
}

// Rollout counts the errors of r's stack service changes as engine
// errors, by operation as Updater does: "create" for a service the
// stack file adds, "update" for one it changes (a service that failed to
// converge is counted too), "rollback" for a rollback_all revert.
func (m *Metrics) Rollout(r stack.Rollout) stack.Rollout {
	return countingRollout{r, countingUpdater{m: m}}
}

type countingRollout struct {
	r stack.Rollout
	c countingUpdater
}

func (c countingRollout) Create(ctx context.Context, cr updater.Creator, spec swarm.ServiceSpec, s updater.Settings, timeout time.Duration, log io.Writer) (updater.Result, error) {
	r, err := c.r.Create(ctx, cr, spec, s, timeout, log)
	c.c.count("create", err)
	return r, err
}

func (c countingRollout) Replace(ctx context.Context, spec swarm.ServiceSpec, s updater.Settings, timeout time.Duration, log io.Writer) (updater.Result, error) {
	r, err := c.r.Replace(ctx, spec, s, timeout, log)
	c.c.count("update", err)
	return r, err
}

func (c countingRollout) Rollback(ctx context.Context, service string, timeout time.Duration, log io.Writer) (updater.Result, error) {
	r, err := c.r.Rollback(ctx, service, timeout, log)
	c.c.count("rollback", err)
	return r, err
}
