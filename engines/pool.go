package engines

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/config"
)

// pingTimeout bounds one engine's answer to a ping: an engine that takes
// longer is as good as gone for a build that waits on it.
const pingTimeout = 5 * time.Second

// ErrNoEngine means no engine carries the labels a project asks for, or
// every one that does is down.
var ErrNoEngine = errors.New("engines: no build engine available")

// Builder builds and pushes images on one engine; *builder.Engine
// satisfies it.
type Builder interface {
	Build(ctx context.Context, req builder.Request, log io.Writer) (string, error)
	Push(ctx context.Context, ref string, log io.Writer) (string, error)
}

// Pruner removes an engine's superseded images; *builder.Engine
// satisfies it.
type Pruner interface {
	Prune(ctx context.Context, repo string, keep int, log io.Writer) (int, error)
}

// Engine is one build engine of a Pool.
type Engine struct {
	// Name names it in job logs, /readyz and /metrics.
	Name string
	// Labels are matched against a project's build.on.
	Labels map[string]string
	// Weight is how many builds it takes for one of an engine of
	// weight 1; below 1 counts as 1.
	Weight int
	// Builder builds and pushes on it; Pruner, when set, removes its
	// superseded images.
	Builder Builder
	Pruner  Pruner
	// Ping returns nil when the engine answers. It must honour ctx.
	Ping func(ctx context.Context) error
}

// State is what the pool knows of one engine, as /readyz shows it.
type State struct {
	Name string `json:"name"`
	// Up is false from a failed ping until one succeeds.
	Up bool `json:"up"`
	// Running is how many jobs hold the engine now.
	Running int `json:"running"`
	// Since is when Up last changed (zero: never).
	Since time.Time `json:"since,omitzero"`
	// Error is why the engine is down.
	Error string `json:"error,omitempty"`
}

type entry struct {
	eng Engine
	st  State
}

// Pool hands out build engines: each job gets the least busy engine that
// is up and matches its labels. Engines start up; a failed ping marks
// one down and a later one that succeeds marks it up again. A Pool is
// safe for concurrent use.
type Pool struct {
	now     func() time.Time
	mu      sync.Mutex
	engines []*entry
}

// New returns a pool of engines, all taken to be up. now is the clock;
// time.Now when nil.
func New(engines []Engine, now func() time.Time) *Pool {
	if now == nil {
		now = time.Now
	}
	p := &Pool{now: now}
	for _, e := range engines {
		e.Weight = max(e.Weight, 1)
		p.engines = append(p.engines, &entry{eng: e, st: State{Name: e.Name, Up: true}})
	}
	return p
}

// Lease is one job's hold on an engine: every image of the job is built
// and pushed through it. Release it when the job is done with the
// engine; a Lease is used by one job at a time.
type Lease struct {
	Engine
	p    *Pool
	once sync.Once
}

// Release gives the engine back. Calling it again does nothing.
func (l *Lease) Release() {
	l.once.Do(func() {
		l.p.mu.Lock()
		defer l.p.mu.Unlock()
		l.p.entry(l.Name).st.Running--
	})
}

// Lost reports whether err, which a build on the leased engine ended
// with, came from the engine being gone rather than from the build: it
// pings the engine, and when that fails marks it down and returns true.
// A build stopped by ctx (a timeout, a newer push) is never a lost
// engine.
func (l *Lease) Lost(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	perr := l.Ping(pctx)
	if perr == nil || ctx.Err() != nil {
		return false
	}
	l.p.mark(l.Name, perr)
	return true
}

// Acquire leases the engine for a job whose project asks for the labels
// on, skipping those named in avoid: among the engines that are up and
// carry every label, the one with the fewest running jobs for its
// weight; ties go to the heavier, then to the one listed first. When
// every matching engine is down it pings them first, so one that came
// back serves the job without waiting for the next Probe. It never
// waits for a busy engine: jobs.concurrency bounds the builds.
func (p *Pool) Acquire(ctx context.Context, on map[string]string, avoid ...string) (*Lease, error) {
	var match []*entry
	for _, e := range p.engines {
		if config.Matches(e.eng.Labels, on) && !slices.Contains(avoid, e.eng.Name) {
			match = append(match, e)
		}
	}
	if len(match) == 0 {
		return nil, fmt.Errorf("%w: none carries the labels %v%s", ErrNoEngine, on, avoidText(avoid))
	}
	if l := p.pick(match); l != nil {
		return l, nil
	}
	p.probe(ctx, match)
	if l := p.pick(match); l != nil {
		return l, nil
	}
	var why []string
	p.mu.Lock()
	for _, e := range match {
		why = append(why, e.eng.Name+": "+e.st.Error)
	}
	p.mu.Unlock()
	return nil, fmt.Errorf("%w: every engine with the labels %v%s is down (%s)", ErrNoEngine, on, avoidText(avoid), strings.Join(why, "; "))
}

func avoidText(avoid []string) string {
	if len(avoid) == 0 {
		return ""
	}
	return " other than " + strings.Join(avoid, ", ")
}

// pick leases the least loaded up engine of match, or returns nil.
func (p *Pool) pick(match []*entry) *Lease {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *entry
	for _, e := range match {
		if !e.st.Up {
			continue
		}
		// Fewer running per weight, without division.
		if best == nil || e.st.Running*best.eng.Weight < best.st.Running*e.eng.Weight ||
			(e.st.Running*best.eng.Weight == best.st.Running*e.eng.Weight && e.eng.Weight > best.eng.Weight) {
			best = e
		}
	}
	if best == nil {
		return nil
	}
	best.st.Running++
	return &Lease{Engine: best.eng, p: p}
}

// Probe pings every engine at once and marks each up or down by its
// answer.
func (p *Pool) Probe(ctx context.Context) { p.probe(ctx, p.engines) }

func (p *Pool) probe(ctx context.Context, es []*entry) {
	var wg sync.WaitGroup
	for _, e := range es {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			defer cancel()
			err := e.eng.Ping(pctx)
			if ctx.Err() != nil {
				return // our caller gave up, not the engine
			}
			p.mark(e.eng.Name, err)
		})
	}
	wg.Wait()
}

// Watch probes every engine each interval until ctx ends, so a down
// engine comes back and a dead idle one is seen.
func (p *Pool) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.Probe(ctx)
		}
	}
}

// mark sets engine name up when err is nil, down with err otherwise.
func (p *Pool) mark(name string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := &p.entry(name).st
	up := err == nil
	if up != st.Up {
		st.Up, st.Since = up, p.now().UTC()
	}
	st.Error = ""
	if err != nil {
		st.Error = err.Error()
	}
}

// entry returns the engine called name; p.mu is held.
func (p *Pool) entry(name string) *entry {
	for _, e := range p.engines {
		if e.eng.Name == name {
			return e
		}
	}
	panic("engines: no engine " + name) // leases only name engines of their pool
}

// States returns every engine's state, in the order of the config.
func (p *Pool) States() []State {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]State, len(p.engines))
	for i, e := range p.engines {
		out[i] = e.st
	}
	return out
}

// Ready pings every engine and returns an error naming them when none is
// up: no job could build.
func (p *Pool) Ready(ctx context.Context) error {
	p.Probe(ctx)
	var down []string
	for _, s := range p.States() {
		if s.Up {
			return nil
		}
		down = append(down, s.Name+": "+s.Error)
	}
	return fmt.Errorf("%w: every build engine is down (%s)", ErrNoEngine, strings.Join(down, "; "))
}
