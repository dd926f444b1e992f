package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/internal/keylock"
	"github.com/swarmhook/swarmhook/source"
	"github.com/swarmhook/swarmhook/stack"
	"github.com/swarmhook/swarmhook/tagpolicy"
	"github.com/swarmhook/swarmhook/updater"
)

// Store keeps job records; it knows no rule of a job's status.
// Implementations are safe for concurrent use and keep their own copies
// of what they are given.
type Store interface {
	// Create stores a new job and sets its ID and per-project Number, and
	// in the same transaction remembers d, when set, as having started
	// it. Either all of it is stored or none.
	Create(ctx context.Context, j *Job, d *Delivery) error
	// Save replaces the stored record of an existing job and, in the
	// same transaction, remembers ds (the deliveries that joined it) as
	// having started it.
	Save(ctx context.Context, j *Job, ds ...*Delivery) error
	// Unfinished returns the jobs not yet ended (queued, running,
	// waiting), oldest first.
	Unfinished(ctx context.Context) ([]*Job, error)
	// Delivery returns the jobs delivery id of provider started, if it
	// was recorded as arriving after since.
	Delivery(ctx context.Context, provider, id string, since time.Time) ([]int64, bool, error)
}

// Delivery is the webhook delivery a job came from. Whether it is a
// redelivery is the caller's to ask first (Runner.Delivery), one copy of
// a delivery at a time (the hook handler holds a lock per delivery id).
type Delivery struct {
	// Provider and ID name the delivery; IDs are unique per provider.
	Provider, ID string
	// Earlier are the jobs the same delivery started before this one (a
	// Bitbucket push can carry several branches).
	Earlier []int64
	// At is when it arrived.
	At time.Time
}

// Observer hears of every job state change: started, ended, superseded,
// interrupted. JobChanged must return quickly (queue slow work such as
// HTTP calls) and is called from several goroutines at once.
type Observer interface {
	JobChanged(j *Job)
}

// Logs opens each job's log for writing. The returned writer is used by
// one goroutine at a time and closed by the runner.
type Logs interface {
	Create(id int64) (io.WriteCloser, error)
}

// Source writes the tree of a pushed commit into a work tree.
type Source interface {
	// Checkout makes dest hold exactly the tree of ref's tip, updating
	// what an earlier Checkout left there, and returns the tip, which is
	// commit or, when ref has moved past it, newer; a commit no longer on
	// ref is an error. Everything in dest, dest included, then has the
	// commit's time as its modification time.
	Checkout(ctx context.Context, repo source.Repo, ref, commit, dest string, log io.Writer) (string, error)
	// Head returns the commit ref points at now.
	Head(ctx context.Context, repo source.Repo, ref string) (string, error)
}

// ImageBuilder builds images on the engine and pushes them.
type ImageBuilder interface {
	Build(ctx context.Context, req builder.Request, log io.Writer) (string, error)
	Push(ctx context.Context, ref string, log io.Writer) (string, error)
}

// ImagePruner removes superseded images this service built from the
// engine, keeping the newest keep of repo (registry/name).
type ImagePruner interface {
	Prune(ctx context.Context, repo string, keep int, log io.Writer) (int, error)
}

// Tagger moves tags in the registry.
type Tagger interface {
	// Host returns the registry's host[:port].
	Host() string
	// Ref returns host/repo:tag.
	Ref(repo, tag string) string
	// Retag points repo:to at the manifest of repo:from, which must have
	// digest want, retrying transient failures and saying so in log.
	Retag(ctx context.Context, repo, from, to, want string, log io.Writer) (string, error)
	// Digest resolves repo:tag.
	Digest(ctx context.Context, repo, tag string) (string, error)
	// Restamp sets the created times of repo:tag, which has digest want,
	// to its org.opencontainers.image.created label, every other config
	// field kept as it is, and returns the digest the tag then has.
	Restamp(ctx context.Context, repo, tag, want string, log io.Writer) (string, error)
}

// ServiceUpdater rolls Swarm services onto new images.
type ServiceUpdater interface {
	CurrentImage(ctx context.Context, service string) (string, error)
	Update(ctx context.Context, req updater.Request, log io.Writer) (updater.Result, error)
	Rollback(ctx context.Context, service string, timeout time.Duration, log io.Writer) (updater.Result, error)
	Redeploy(ctx context.Context, service string, timeout time.Duration, log io.Writer) (updater.Result, error)
	Scale(ctx context.Context, service string, replicas uint64, timeout time.Duration, log io.Writer) (updater.Result, error)
}

// Deps are the runner's collaborators.
type Deps struct {
	Store   Store
	Logs    Logs
	Source  Source
	Builder ImageBuilder
	// Pruner, when set, removes superseded images after each push.
	Pruner ImagePruner
	// Engines, when set, lends each job the engine it builds, pushes
	// and prunes on, in place of Builder and Pruner (job/engines.go).
	Engines  Engines
	Registry Tagger
	Updater  ServiceUpdater
	// Services, when set, is asked before a deploy whether the target's
	// services all exist, so a missing one fails the deploy before any
	// service changes.
	Services ServiceInventory
	// Stacks and Rollout deploy targets with a stack: file; both are
	// needed for those only.
	Stacks  stack.Client
	Rollout stack.Rollout
	Log     zerolog.Logger
	// Observers hear of job state changes: notifications, metrics.
	Observers []Observer
	// Gate, when set, holds deploys for approvals, windows and freezes
	// (job/gate.go); without one every deploy goes at once.
	Gate Gate
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

var (
	// ErrQueueFull means too many jobs are waiting; the caller should retry.
	ErrQueueFull = errors.New("job: queue is full")
	// ErrShuttingDown means the runner takes no new jobs.
	ErrShuttingDown = errors.New("job: shutting down")
	// ErrUnknownProject means a request names no configured project.
	ErrUnknownProject = errors.New("job: unknown project")
	// errShutdown is the cause given to jobs cancelled by Shutdown.
	errShutdown = errors.New("swarmhook shut down while the job ran")
)

// maxLanes bounds how many project/branch lanes may wait at once. With
// coalescing each lane holds at most one waiting build, so this is only
// reached by a flood of distinct branches.
const maxLanes = 1024

// Request asks for a job.
type Request struct {
	Project    string
	Action     Action
	Trigger    Trigger
	Ref        string // refs/heads/x or refs/tags/x
	Branch     string // the branch or tag name
	Commit     string
	DeliveryID string
	Who        string
	// Service, Tag and Replicas are for service actions.
	Service  string
	Tag      string
	Replicas *uint64
	// Delivery, when set, is recorded with the job, or with the waiting
	// build it joins.
	Delivery *Delivery
	// Environment and From are a promotion's target and source.
	Environment, From string
}

// Runner queues and runs jobs. It is safe for concurrent use.
//
// Builds run on cfg.Jobs.Concurrency workers, one at a time per project
// and branch (see Queue); a push that arrives while a build of its
// branch waits joins that build in memory. Service actions (deploy of a
// tag, rollback, redeploy, scale) run as soon as they arrive and take
// turns per service. Updates of one service never overlap, whatever
// started them.
type Runner struct {
	cfg     *config.Config
	d       Deps
	workDir string
	// branches makes the pushes to one branch record one at a time, so
	// each finds the build the one before it queued.
	branches keylock.Set
	services keylock.Set

	mu        sync.Mutex
	cond      *sync.Cond
	closed    bool
	queue     *Queue
	lastStamp map[string]time.Time
	wg        sync.WaitGroup
	baseCtx   context.Context
	cancel    context.CancelCauseFunc
}

// NewRunner returns a runner; Resume picks up what a previous process
// left, Start sets the workers going.
func NewRunner(cfg *config.Config, d Deps) *Runner {
	if d.Now == nil {
		d.Now = time.Now
	}
	r := &Runner{
		cfg:       cfg,
		d:         d,
		workDir:   filepath.Join(cfg.DataDir, "work"),
		queue:     NewQueue(),
		lastStamp: map[string]time.Time{},
	}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// Resume deals with what a previous process left unfinished: running
// jobs are marked interrupted (their work died with the process), queued
// ones are queued again, and every work tree under data_dir/work is
// removed. Call it once, after Start and before any Submit, while this
// runner runs no job; the caller must hold the data directory (no other
// process uses it).
func (r *Runner) Resume(ctx context.Context) error {
	if err := r.removeWorkTrees(); err != nil {
		r.d.Log.Warn().Err(err).Msg("leftover work trees stay on disk")
	}
	jobs, err := r.d.Store.Unfinished(ctx)
	if err != nil {
		return fmt.Errorf("read unfinished jobs: %w", err)
	}
	for _, j := range jobs {
		if j.Status == Waiting && r.d.Gate != nil && j.Wait != nil {
			r.d.Log.Info().Int64("job", j.ID).Msg("held deploy waits again after restart")
			r.supersede(ctx, j, r.d.Gate.Hold(j))
			continue
		}
		if j.Status == Running || j.Status == Waiting {
			j.Error = "swarmhook stopped while this job ran; its services were left as Swarm had them"
			if err := r.transition(ctx, j, Interrupted); err != nil {
				return err
			}
			continue
		}
		r.d.Log.Info().Int64("job", j.ID).Msg("queued job resumed after restart")
		if err := r.enqueue(ctx, &Entry{Job: j}); err != nil {
			return err
		}
	}
	return nil
}

// Start runs cfg.Jobs.Concurrency build workers until Shutdown. ctx bounds
// every job.
func (r *Runner) Start(ctx context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	r.mu.Lock()
	r.baseCtx, r.cancel = ctx, cancel
	r.mu.Unlock()
	for i := 0; i < r.cfg.Jobs.Concurrency; i++ {
		r.wg.Add(1)
		go r.worker(ctx)
	}
}

func (r *Runner) worker(ctx context.Context) {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		var b *Entry
		for b == nil && !r.closed {
			var ok bool
			if b, ok = r.queue.Next(); !ok {
				r.cond.Wait()
			}
		}
		r.mu.Unlock()
		if b == nil {
			return // closed: what waits stays queued for the next start
		}

		r.run(ctx, b.Job, b.Deliveries, nil)

		r.mu.Lock()
		r.queue.Done(b.Job)
		r.cond.Signal()
		r.mu.Unlock()
	}
}

// Shutdown stops starting jobs and waits for running ones until ctx is
// done; then it cancels them, and they are recorded as interrupted.
// Queued builds stay queued in the store, saved with the pushes that
// joined them, and resume at the next start.
func (r *Runner) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.cond.Broadcast()
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		if r.cancel != nil {
			r.cancel(errShutdown)
		}
		<-done
		err = fmt.Errorf("jobs still running at shutdown were interrupted: %w", ctx.Err())
	}
	r.mu.Lock()
	waiting := r.queue.Waiting()
	r.mu.Unlock()
	for _, b := range waiting {
		if len(b.Deliveries) == 0 && b.Job.Pushes <= 1 {
			continue // nothing joined it: the store has it as it is
		}
		if serr := r.d.Store.Save(context.WithoutCancel(ctx), b.Job, b.Deliveries...); serr != nil {
			log := r.jobLog(b.Job)
			log.Error().Err(serr).Msg("pushes that joined a queued build not saved: it builds the branch's head all the same")
		}
	}
	return err
}

// Submit records a queued job and hands it on. It returns at once with
// the job the request is in: a new one, or, for a build of a branch whose
// previous build still waits, that waiting build, which now builds the
// newer commit.
func (r *Runner) Submit(ctx context.Context, req Request) (*Job, error) {
	if _, ok := r.cfg.Project(req.Project); !ok && req.Project != "" {
		return nil, fmt.Errorf("%w: %q", ErrUnknownProject, req.Project)
	}
	if req.Action == "" {
		req.Action = ActionBuild
	}
	j := &Job{
		Project: req.Project, Action: req.Action, Trigger: req.Trigger, Status: Queued,
		Ref: req.Ref, Branch: req.Branch, Commit: req.Commit,
		DeliveryID: req.DeliveryID, Who: req.Who, Created: r.d.Now().UTC(),
		Service: req.Service, Tag: req.Tag, Replicas: req.Replicas,
		Environment: req.Environment, From: req.From,
	}
	r.mu.Lock()
	closed, full := r.closed, r.queue.Ready() >= maxLanes
	r.mu.Unlock()
	if closed {
		return nil, ErrShuttingDown
	}
	if full {
		return nil, ErrQueueFull
	}
	if j.Action == ActionBuild {
		j.Pushes = 1
		defer r.branches.Lock(laneKey(j))()
		r.mu.Lock()
		joined, ok := r.queue.Join(j, req.Delivery)
		r.mu.Unlock()
		if ok {
			r.d.Log.Debug().Int64("job", joined.ID).Int("pushes", joined.Pushes).Str("commit", joined.Commit).Msg("push joined the queued build of its branch")
			return joined, nil
		}
	}
	if err := r.d.Store.Create(ctx, j, req.Delivery); err != nil {
		return nil, fmt.Errorf("record job: %w", err)
	}
	return j, r.enqueue(ctx, &Entry{Job: j.Clone()})
}

// Delivery returns the jobs delivery id of provider started, if it
// arrived after since: from the queue while it joined a build held
// there, else from the store.
func (r *Runner) Delivery(ctx context.Context, provider, id string, since time.Time) ([]int64, bool, error) {
	r.mu.Lock()
	jobs := r.queue.Seen(provider, id)
	r.mu.Unlock()
	if jobs != nil {
		return jobs, true, nil
	}
	return r.d.Store.Delivery(ctx, provider, id, since)
}

// enqueue hands on a recorded job: a build to its lane, where it
// supersedes the build that waited there; a service action to a
// goroutine of its own.
func (r *Runner) enqueue(ctx context.Context, b *Entry) error {
	if b.Job.Action != ActionBuild {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.run(r.serviceCtx(), b.Job, nil, nil)
		}()
		return nil
	}
	r.mu.Lock()
	old := r.queue.Push(b)
	r.cond.Signal()
	r.mu.Unlock()
	if old == nil {
		return nil
	}
	old.Job.SupersededBy = b.Job.ID
	if err := r.transition(ctx, old.Job, Superseded, old.Deliveries...); err != nil {
		// Still queued in the store: the next start supersedes it again.
		r.d.Log.Error().Err(err).Msg("superseded build not recorded")
	}
	return nil
}

// QueueDepth returns how many builds wait for a worker or for the build
// of their branch that runs now. It is cheap enough for every scrape.
func (r *Runner) QueueDepth() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue.Waiting())
}

// Waiting returns build id as it waits in the queue, or false when it
// does not wait. Pushes that join a waiting build reach its record only
// when it starts: until then this copy, not the store's, is the newest.
func (r *Runner) Waiting(id int64) (*Job, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.queue.Waiting() {
		if e.Job.ID == id {
			return e.Job.Clone(), true
		}
	}
	return nil, false
}

// serviceCtx is the context service actions run under: cancelled by
// Shutdown like the workers'.
func (r *Runner) serviceCtx() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.baseCtx
}

// jobLog is the runner's log with j's fields.
func (r *Runner) jobLog(j *Job) zerolog.Logger {
	return r.d.Log.With().Int64("job", j.ID).Str("project", j.Project).Str("action", string(j.Action)).Logger()
}

// run executes one job and records how it ended; ds are the deliveries
// that joined it in memory, saved with its first write. fn, when set, is
// what the job does (see Do); else its action says.
func (r *Runner) run(ctx context.Context, j *Job, ds []*Delivery, fn func(ctx context.Context, j *Job, w io.Writer) error) {
	log := r.jobLog(j)
	runner := ctx
	ctx, cancel := context.WithTimeoutCause(ctx, r.cfg.Jobs.Timeout.Duration, fmt.Errorf("job timed out after %s", r.cfg.Jobs.Timeout.Duration))
	defer cancel()

	w, err := r.d.Logs.Create(j.ID)
	if err != nil {
		log.Error().Err(err).Msg("open job log")
		w = nopCloser{io.Discard}
	}
	// Every line goes through an escaper; text from outside in lines
	// written here goes through Printable as well.
	lw := &escaper{w: w}
	defer lw.Close()
	jl := &lockedWriter{w: lw}

	if err := r.transition(ctx, j, Running, ds...); err == nil {
		ds = nil // saved
	}
	fmt.Fprintf(jl, "job %d (%s #%d): %s, triggered by %s%s\n", j.ID, j.Project, j.Number, Printable(j.describe()), j.Trigger, whoSuffix(j.Who))

	switch {
	case fn != nil:
		err = fn(ctx, j, jl)
	case j.Action == ActionBuild:
		p, _ := r.cfg.Project(j.Project)
		err = r.pipeline(ctx, j, p, jl)
	default:
		err = r.serviceAction(ctx, j, jl)
	}
	cause := context.Cause(ctx)
	if err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = fmt.Errorf("%w (%v)", err, cause)
	}
	switch {
	case errors.Is(err, errHeld) && r.d.Gate != nil:
		r.hold(runner, j, jl)
	case err != nil && errors.Is(cause, errShutdown):
		j.Error = err.Error()
		fmt.Fprintf(jl, "INTERRUPTED: %s\n", Printable(err.Error()))
		r.transition(runner, j, Interrupted, ds...)
	case err != nil:
		j.Error = err.Error()
		fmt.Fprintf(jl, "FAILED: %s\n", Printable(err.Error()))
		r.transition(runner, j, Failed, ds...)
	default:
		fmt.Fprintln(jl, "SUCCEEDED")
		r.transition(runner, j, Succeeded, ds...)
	}
}

func whoSuffix(who string) string {
	if who == "" {
		return ""
	}
	return " (" + Printable(who) + ")"
}

// save writes j's record while it runs (its stage, its images). A failed
// write is logged: the job goes on, and its end is saved with retries.
func (r *Runner) save(ctx context.Context, j *Job) {
	if err := r.d.Store.Save(ctx, j); err != nil {
		log := r.jobLog(j)
		log.Error().Err(err).Msg("save job")
	}
}

// timestamp returns the build time for a branch, never reusing the last
// one so two builds never share a rollback tag.
func (r *Runner) timestamp(key string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := tagpolicy.NextTimestamp(r.d.Now(), r.lastStamp[key])
	r.lastStamp[key] = t
	return t
}

// lockService makes jobs take turns on one service.
func (r *Runner) lockService(name string) func() {
	return r.services.Lock(name)
}

// lockedWriter lets parallel steps share one job log.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
