package job

import (
	"context"
	"fmt"
	"io"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/engines"
)

// Engines lends each job the build engine it builds and pushes all its
// images on (docker.builders). Safe for concurrent use.
type Engines interface {
	// Acquire leases the least busy engine that is up and carries the
	// labels on, none of those named in avoid. The caller releases it.
	Acquire(ctx context.Context, on map[string]string, avoid ...string) (*engines.Lease, error)
}

// leaseKey is the context key of the job's engine lease: the builds and
// pushes of one job all go through it.
type leaseKey struct{}

// builder returns the engine a job's builds and pushes go to: the one it
// leased, or Deps.Builder.
func (r *Runner) builder(ctx context.Context) ImageBuilder {
	if l, ok := ctx.Value(leaseKey{}).(*engines.Lease); ok {
		return l.Builder
	}
	return r.d.Builder
}

// pruner returns the engine whose superseded images a job removes: the
// one it built on.
func (r *Runner) pruner(ctx context.Context) ImagePruner {
	if l, ok := ctx.Value(leaseKey{}).(*engines.Lease); ok {
		if l.Pruner == nil {
			return nil
		}
		return l.Pruner
	}
	return r.d.Pruner
}

// leaseEngine leases j an engine of Deps.Engines for p's build.on, not
// one in avoid, and records it in j. The returned context carries the
// lease; releaseEngine gives it back. Without Deps.Engines it returns ctx and
// no lease: Deps.Builder builds everything.
func (r *Runner) leaseEngine(ctx context.Context, j *Job, p *config.Project, w io.Writer, avoid ...string) (context.Context, error) {
	if r.d.Engines == nil {
		return ctx, nil
	}
	l, err := r.d.Engines.Acquire(ctx, p.Build.On, avoid...)
	if err != nil {
		return ctx, err
	}
	j.Engine = l.Name
	fmt.Fprintf(w, "building on engine %s\n", l.Name)
	return context.WithValue(ctx, leaseKey{}, l), nil
}

// buildOnEngine runs build on the job's engine and, when the engine died
// under it (it no longer answers), once more on another engine, saying so
// in w. The engine that died is marked down until it answers again. It
// returns the context carrying the engine the images now are on, which
// the pushes must use.
func (r *Runner) buildOnEngine(ctx context.Context, j *Job, p *config.Project, w io.Writer, build func(ctx context.Context) error) (context.Context, error) {
	err := build(ctx)
	l, ok := ctx.Value(leaseKey{}).(*engines.Lease)
	if err == nil || !ok || !l.Lost(ctx, err) {
		return ctx, err
	}
	fmt.Fprintf(w, "engine %s stopped answering during the build (%v): it is marked down; building again on another engine\n", l.Name, err)
	l.Release()
	ctx, aerr := r.leaseEngine(ctx, j, p, w, l.Name)
	if aerr != nil {
		return ctx, fmt.Errorf("%w; no engine to build on again: %w", err, aerr)
	}
	return ctx, build(ctx)
}

// releaseEngine gives back the engine leased in ctx, if any.
func releaseEngine(ctx context.Context) {
	if l, ok := ctx.Value(leaseKey{}).(*engines.Lease); ok {
		l.Release()
	}
}

// cacheFrom names the images a build of img may take layers from: with
// docker.builders, the branch's -latest in the registry, so an engine
// that never built the branch (or pruned it) still reuses its layers.
// With the one engine of docker.host the engine's own images are the
// cache, as they always were.
func (r *Runner) cacheFrom(img config.Image, im Image) []string {
	if r.d.Engines == nil || img.NoCache {
		return nil
	}
	return []string{r.d.Registry.Ref(img.Name, im.LatestTag)}
}
