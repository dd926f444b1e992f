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
	"github.com/swarmhook/swarmhook/tagpolicy"
	"github.com/swarmhook/swarmhook/updater"
)

// Store keeps job records. Implementations are safe for concurrent use and
// keep their own copies of what they are given.
type Store interface {
	// Create stores a new job and sets its ID and per-project Number, and
	// in the same transaction records what w names: the delivery that
	// brought the job. Either all of it is stored or none.
	Create(ctx context.Context, j *Job, w With) error
	// Join records that a push joined queued build j: it saves j as
	// given and remembers d (when set) as having started j, both or
	// neither, durably before it returns. It fails if j is no longer
	// queued. A redelivery (see Delivery.Since) writes nothing and
	// returns *RedeliveryError. The caller keeps j from starting, and
	// other copies of d from being recorded, until Join returns.
	Join(ctx context.Context, j *Job, d *Delivery) error
	// Save replaces the stored record of an existing job.
	Save(ctx context.Context, j *Job) error
	// Unfinished returns the queued and running jobs, oldest first.
	Unfinished(ctx context.Context) ([]*Job, error)
}

// With is what a new job's record is written together with.
type With struct {
	// Delivery, when set, is remembered as having started the job (and
	// its Earlier jobs), so a redelivery starts nothing.
	Delivery *Delivery
}

// Delivery is the webhook delivery a job came from.
type Delivery struct {
	// Provider and ID name the delivery; IDs are unique per provider.
	Provider, ID string
	// Earlier are the jobs the same delivery started before this one (a
	// Bitbucket push can carry several branches).
	Earlier []int64
	// At is when it arrived.
	At time.Time
	// Since: a record of the same delivery received at or after Since
	// makes this a redelivery, and Create or Join then writes nothing
	// and returns a *RedeliveryError. Create checks in the write itself;
	// Join just before it, so callers hand in one copy of a delivery at
	// a time (the hook handler holds a lock per delivery id).
	Since time.Time
}

// RedeliveryError means a job's delivery was seen already (see
// Delivery.Since): it started Jobs, and nothing new was recorded.
type RedeliveryError struct {
	Jobs []int64
}

func (e *RedeliveryError) Error() string {
	return fmt.Sprintf("job: redelivery: the delivery started jobs %v already", e.Jobs)
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

// Source writes the tree of a pushed commit into a fresh directory.
type Source interface {
	// Checkout writes the tree of ref's tip into dest and returns the
	// tip, which is commit or, when ref has moved past it, newer; a
	// commit no longer on ref is an error.
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
	Pruner   ImagePruner
	Registry Tagger
	Updater  ServiceUpdater
	// Services, when set, is asked before a deploy whether the target's
	// services all exist, so a missing one fails the deploy before any
	// service changes.
	Services ServiceInventory
	Log      zerolog.Logger
	// Observers hear of job state changes: notifications, metrics.
	Observers []Observer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// ErrQueueFull means too many jobs are waiting; the caller should retry.
var ErrQueueFull = errors.New("job: queue is full")

// ErrShuttingDown means the runner takes no new jobs.
var ErrShuttingDown = errors.New("job: shutting down")

// ErrUnknownProject means a request names no configured project.
var ErrUnknownProject = errors.New("job: unknown project")

// errShutdown is the cause given to jobs cancelled by Shutdown.
var errShutdown = errors.New("swarmhook shut down while the job ran")

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
	// Delivery, when set, is recorded with the job: see With.
	Delivery *Delivery
}

// lane holds the jobs of one project and branch: at most one running and,
// for builds, at most one waiting. A push joins the waiting build (see
// submitBuild); a build queued otherwise (Resume) replaces it.
type lane struct {
	running bool
	waiting []*Job
	// submitting counts Submits waiting to record a push or recording
	// one; the lane stays while any do.
	submitting int
	// queued: the lane is in Runner.ready.
	queued bool
	// recording is closed when the Submit recording a push into the lane
	// is done; nil when none is. Pushes to one lane are recorded one at a
	// time, so each finds the build the one before it queued and joins it.
	recording chan struct{}
}

// Runner queues and runs jobs. It is safe for concurrent use.
//
// Builds run on cfg.Jobs.Concurrency workers, one at a time per project
// and branch; a push that arrives while an older one waits supersedes it.
// Service actions (deploy of a tag, rollback, redeploy, scale) run as soon
// as they arrive and take turns per service. Updates of one service never
// overlap, whatever started them.
type Runner struct {
	cfg     *config.Config
	d       Deps
	workDir string

	mu        sync.Mutex
	cond      *sync.Cond
	closed    bool
	lanes     map[string]*lane
	ready     []string // lanes with a waiting job and none running, oldest first
	lastStamp map[string]time.Time
	services  keylock.Set
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
		lanes:     map[string]*lane{},
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
		if j.Status == Running {
			j.Status, j.Finished, j.Stage = Interrupted, r.d.Now().UTC(), nil
			j.Error = "swarmhook stopped while this job ran; its services were left as Swarm had them"
			if err := r.d.Store.Save(ctx, j); err != nil {
				return err
			}
			r.d.Log.Warn().Int64("job", j.ID).Msg("job interrupted by a restart")
			r.notify(j)
			continue
		}
		r.d.Log.Info().Int64("job", j.ID).Msg("queued job resumed after restart")
		if err := r.enqueue(ctx, j); err != nil {
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
		for len(r.ready) == 0 && !r.closed {
			r.cond.Wait()
		}
		if r.closed {
			r.mu.Unlock()
			return
		}
		key := r.ready[0]
		r.ready = r.ready[1:]
		l := r.lanes[key]
		if l == nil {
			r.mu.Unlock()
			continue
		}
		l.queued = false
		if len(l.waiting) == 0 {
			// A Submit took the waiting build to join a push to it
			// and queues the lane again once that is recorded.
			r.mu.Unlock()
			continue
		}
		j := l.waiting[0]
		l.waiting = l.waiting[1:]
		l.running = true
		r.mu.Unlock()

		r.run(ctx, j)

		r.mu.Lock()
		l.running = false
		if len(l.waiting) > 0 {
			r.ready = append(r.ready, key)
			l.queued = true
			r.cond.Signal()
		} else if l.submitting == 0 {
			delete(r.lanes, key)
		}
		r.mu.Unlock()
	}
}

// Shutdown stops starting jobs (queued ones stay queued in the store and
// resume at the next start) and waits for running ones until ctx is done;
// then it cancels them, and they are recorded as interrupted.
func (r *Runner) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.cond.Broadcast()
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		if r.cancel != nil {
			r.cancel(errShutdown)
		}
		<-done
		return fmt.Errorf("jobs still running at shutdown were interrupted: %w", ctx.Err())
	}
}

// Submit records a queued job and hands it on. It returns at once with
// the job the request is in: a new one, or, for a build of a branch whose
// previous build still waits, that waiting build, which now builds the
// newer commit (see submitBuild).
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
	}
	r.mu.Lock()
	closed, full := r.closed, len(r.ready) >= maxLanes
	r.mu.Unlock()
	if closed {
		return nil, ErrShuttingDown
	}
	if full {
		return nil, ErrQueueFull
	}
	if j.Action != ActionBuild {
		if err := r.d.Store.Create(ctx, j, With{Delivery: req.Delivery}); err != nil {
			return nil, fmt.Errorf("record job: %w", err)
		}
		return j, r.enqueue(ctx, j.Clone())
	}
	j.Pushes = 1
	return r.submitBuild(ctx, j, req.Delivery)
}

// submitBuild records a push to a branch. When a build of the branch
// already waits in its lane, the push joins it: the waiting build takes
// the newer commit and counts one more push (Job.Pushes), and the
// delivery is recorded against it, in one write. Otherwise the push
// becomes a new job. Either way it returns the job the push is in.
//
// Joining rather than queueing a new job that supersedes the waiting one
// keeps a burst of pushes from writing a job per push: a branch pushed
// to a thousand times while it builds has two jobs, not a thousand.
func (r *Runner) submitBuild(ctx context.Context, j *Job, d *Delivery) (*Job, error) {
	key := laneKey(j)
	// Take the waiting build out of the lane so no worker starts it while
	// the push is being recorded into it.
	r.mu.Lock()
	l := r.lane(key)
	l.submitting++
	for l.recording != nil {
		wait := l.recording
		r.mu.Unlock()
		<-wait
		r.mu.Lock()
	}
	l.recording = make(chan struct{})
	var old *Job
	if len(l.waiting) > 0 {
		old, l.waiting = l.waiting[0], l.waiting[1:]
	}
	r.mu.Unlock()

	var err error
	if old != nil {
		j = joined(old, j)
		err = r.d.Store.Join(ctx, j, d)
	} else {
		err = r.d.Store.Create(ctx, j, With{Delivery: d})
	}

	r.mu.Lock()
	l.submitting--
	close(l.recording)
	l.recording = nil
	var losers []superseded
	if err != nil {
		// Nothing was written (an error, or a redelivery): the taken
		// build goes back as it was.
		if old != nil {
			losers = r.offer(key, l, old)
		}
	} else {
		losers = r.offer(key, l, j.Clone())
	}
	if !l.running && !l.queued && len(l.waiting) == 0 && l.submitting == 0 {
		delete(r.lanes, key)
	}
	r.mu.Unlock()
	if err == nil && old != nil {
		r.d.Log.Debug().Int64("job", j.ID).Int("pushes", j.Pushes).Str("commit", j.Commit).Msg("push joined the queued build of its branch")
	}
	if serr := r.recordSuperseded(ctx, losers); serr != nil {
		// Still queued in the store: the next start supersedes it again.
		r.d.Log.Error().Err(serr).Msg("superseded build not recorded")
	}
	if err != nil {
		return nil, fmt.Errorf("record job: %w", err)
	}
	return j, nil
}

// joined returns waiting build old with push j joined to it: the newer
// commit and who pushed it, one more push.
func joined(old, j *Job) *Job {
	n := old.Clone()
	n.Trigger, n.Ref, n.Commit, n.DeliveryID, n.Who = j.Trigger, j.Ref, j.Commit, j.DeliveryID, j.Who
	n.Pushes = max(old.Pushes, 1) + 1
	return n
}

// superseded is a queued build that gave way to a newer one.
type superseded struct {
	j  *Job
	by int64
}

// lane returns the lane of key, making it if needed. r.mu is held.
func (r *Runner) lane(key string) *lane {
	l, ok := r.lanes[key]
	if !ok {
		l = &lane{}
		r.lanes[key] = l
	}
	return l
}

// offer makes recorded build j the waiting build of its lane and returns
// the build that gave way, if any, to be recorded as superseded. Pushes
// to a lane are recorded one at a time and Resume offers oldest first, so
// j is never older than what waits. r.mu is held.
func (r *Runner) offer(key string, l *lane, j *Job) []superseded {
	var out []superseded
	for _, old := range l.waiting {
		out = append(out, superseded{old, j.ID})
	}
	l.waiting = []*Job{j}
	if !l.running && !l.queued {
		r.ready = append(r.ready, key)
		l.queued = true
		r.cond.Signal()
	}
	return out
}

// recordSuperseded saves builds that gave way outside a Create.
func (r *Runner) recordSuperseded(ctx context.Context, losers []superseded) error {
	for _, s := range losers {
		s.j.Status, s.j.SupersededBy, s.j.Finished = Superseded, s.by, r.d.Now().UTC()
		if err := r.d.Store.Save(ctx, s.j); err != nil {
			return fmt.Errorf("record superseded job %d: %w", s.j.ID, err)
		}
		r.d.Log.Info().Int64("job", s.j.ID).Int64("by", s.by).Msg("queued build superseded by a newer push")
		r.notify(s.j)
	}
	return nil
}

func laneKey(j *Job) string { return j.Project + "\x00" + j.Branch }

// enqueue puts a recorded job in its lane. A build replaces a waiting
// build of the same project and branch, which is recorded as superseded.
func (r *Runner) enqueue(ctx context.Context, j *Job) error {
	if j.Action != ActionBuild {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.run(r.serviceCtx(), j)
		}()
		return nil
	}
	key := laneKey(j)
	r.mu.Lock()
	losers := r.offer(key, r.lane(key), j)
	r.mu.Unlock()
	return r.recordSuperseded(ctx, losers)
}

// serviceCtx is the context service actions run under: cancelled by
// Shutdown like the workers'.
func (r *Runner) serviceCtx() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.baseCtx
}

// run executes one job and records how it ended.
func (r *Runner) run(ctx context.Context, j *Job) {
	log := r.d.Log.With().Int64("job", j.ID).Str("project", j.Project).Str("action", string(j.Action)).Logger()
	runner := ctx
	ctx, cancel := context.WithTimeoutCause(ctx, r.cfg.Jobs.Timeout.Duration, fmt.Errorf("job timed out after %s", r.cfg.Jobs.Timeout.Duration))
	defer cancel()

	w, err := r.d.Logs.Create(j.ID)
	if err != nil {
		log.Error().Err(err).Msg("open job log")
		w = nopCloser{io.Discard}
	}
	// Every line goes through escapeLog; text from outside in lines
	// written here goes through Printable as well.
	lw := escapeLog(w)
	defer lw.Close()
	jl := &lockedWriter{w: lw}

	j.Status, j.Started = Running, r.d.Now().UTC()
	r.save(ctx, j, log)
	r.notify(j)
	log.Info().Str("branch", j.Branch).Str("commit", j.Commit).Str("service", j.Service).Msg("job started")
	fmt.Fprintf(jl, "job %d (%s #%d): %s, triggered by %s%s\n", j.ID, j.Project, j.Number, Printable(j.describe()), j.Trigger, whoSuffix(j.Who))

	switch j.Action {
	case ActionBuild:
		p, _ := r.cfg.Project(j.Project)
		err = r.pipeline(ctx, j, p, jl)
	default:
		err = r.serviceAction(ctx, j, jl)
	}
	cause := context.Cause(ctx)
	if err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = fmt.Errorf("%w (%v)", err, cause)
	}
	j.Finished, j.Stage = r.d.Now().UTC(), nil
	switch {
	case err != nil && errors.Is(cause, errShutdown):
		j.Status, j.Error = Interrupted, err.Error()
		fmt.Fprintf(jl, "INTERRUPTED: %s\n", Printable(err.Error()))
		log.Warn().Err(err).Msg("job interrupted by shutdown")
	case err != nil:
		j.Status, j.Error = Failed, err.Error()
		fmt.Fprintf(jl, "FAILED: %s\n", Printable(err.Error()))
		log.Error().Err(err).Msg("job failed")
	default:
		j.Status = Succeeded
		fmt.Fprintln(jl, "SUCCEEDED")
		log.Info().Dur("took", j.Finished.Sub(j.Started)).Msg("job succeeded")
	}
	r.saveEnd(runner, j, log)
	r.notify(j)
}

// saveRetry is how long the first retry of a job's final save waits;
// each next one waits twice as long, up to saveRetryMax.
const (
	saveRetry    = time.Second
	saveRetryMax = 30 * time.Second
)

// saveEnd records how j ended, trying again until it is saved or runner
// (the runner's context, not the job's) is cancelled: a job left
// running in the store would never end for its log's followers, and
// until the next start Resume could not mark it interrupted. A full
// data_dir is the usual cause, and the save goes through once space
// returns.
func (r *Runner) saveEnd(runner context.Context, j *Job, log zerolog.Logger) {
	wait := saveRetry
	for tries := 1; ; tries++ {
		// Even when the job's own context is spent.
		err := r.d.Store.Save(context.WithoutCancel(runner), j)
		if err == nil {
			if tries > 1 {
				log.Info().Int("tries", tries).Str("status", string(j.Status)).Msg("job's end saved")
			}
			return
		}
		if runner.Err() != nil {
			log.Error().Err(err).Str("status", string(j.Status)).Msg("job's end not saved: the next start marks it interrupted")
			return
		}
		log.Error().Err(err).Str("status", string(j.Status)).Dur("retry_in", wait).Msg("job's end not saved, trying again")
		t := time.NewTimer(wait)
		select {
		case <-runner.Done():
			t.Stop()
		case <-t.C:
		}
		wait = min(2*wait, saveRetryMax)
	}
}

// notify tells every observer about j's new state. Observers must not
// block; each gets its own copy.
func (r *Runner) notify(j *Job) {
	for _, o := range r.d.Observers {
		o.JobChanged(j.Clone())
	}
}

func whoSuffix(who string) string {
	if who == "" {
		return ""
	}
	return " (" + Printable(who) + ")"
}

func (r *Runner) save(ctx context.Context, j *Job, log zerolog.Logger) {
	if err := r.d.Store.Save(ctx, j); err != nil {
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
