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
	"github.com/swarmhook/swarmhook/source"
	"github.com/swarmhook/swarmhook/tagpolicy"
	"github.com/swarmhook/swarmhook/updater"
)

// Store keeps job records. Implementations are safe for concurrent use and
// keep their own copies of what they are given.
type Store interface {
	// Create stores a new job and sets its ID and per-project Number.
	Create(ctx context.Context, j *Job) error
	// Save replaces the stored record of an existing job.
	Save(ctx context.Context, j *Job) error
}

// Logs opens each job's log for writing. The returned writer is used by
// one goroutine at a time and closed by the runner.
type Logs interface {
	Create(id int64) (io.WriteCloser, error)
}

// Source writes the tree of a pushed commit into a fresh directory.
type Source interface {
	Checkout(ctx context.Context, repo source.Repo, ref, commit, dest string, log io.Writer) error
}

// ImageBuilder builds images on the engine and pushes them.
type ImageBuilder interface {
	Build(ctx context.Context, req builder.Request, log io.Writer) (string, error)
	Push(ctx context.Context, ref string, log io.Writer) (string, error)
}

// Tagger moves tags in the registry.
type Tagger interface {
	// Ref returns host/repo:tag.
	Ref(repo, tag string) string
	// Retag points repo:to at the manifest of repo:from, which must have
	// digest want.
	Retag(ctx context.Context, repo, from, to, want string) (string, error)
}

// ServiceUpdater rolls Swarm services onto new images.
type ServiceUpdater interface {
	CurrentImage(ctx context.Context, service string) (string, error)
	Update(ctx context.Context, req updater.Request, log io.Writer) (updater.Result, error)
}

// Deps are the runner's collaborators.
type Deps struct {
	Store    Store
	Logs     Logs
	Source   Source
	Builder  ImageBuilder
	Registry Tagger
	Updater  ServiceUpdater
	Log      zerolog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// ErrQueueFull means too many jobs are waiting; the caller should retry.
var ErrQueueFull = errors.New("job: queue is full")

// ErrUnknownProject means a request names no configured project.
var ErrUnknownProject = errors.New("job: unknown project")

// queueSize bounds waiting jobs; a burst beyond it is refused, not lost.
const queueSize = 256

// Request asks for a job.
type Request struct {
	Project    string
	Trigger    Trigger
	Ref        string // refs/heads/x or refs/tags/x
	Branch     string // the branch or tag name
	Commit     string
	DeliveryID string
	Who        string
}

// Runner queues and runs jobs. It is safe for concurrent use.
type Runner struct {
	cfg     *config.Config
	d       Deps
	workDir string
	queue   chan *Job

	mu        sync.Mutex
	closed    bool
	lastStamp map[string]time.Time
	services  map[string]*sync.Mutex
	wg        sync.WaitGroup
}

// NewRunner returns a runner; Start sets its workers going.
func NewRunner(cfg *config.Config, d Deps) *Runner {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Runner{
		cfg:       cfg,
		d:         d,
		workDir:   filepath.Join(cfg.DataDir, "work"),
		queue:     make(chan *Job, queueSize),
		lastStamp: map[string]time.Time{},
		services:  map[string]*sync.Mutex{},
	}
}

// Start runs cfg.Jobs.Concurrency workers until Shutdown. ctx bounds every
// job the workers run.
func (r *Runner) Start(ctx context.Context) {
	for i := 0; i < r.cfg.Jobs.Concurrency; i++ {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for j := range r.queue {
				r.run(ctx, j)
			}
		}()
	}
}

// Shutdown stops taking jobs and waits for the queued and running ones to
// end, or for ctx to be done.
func (r *Runner) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.queue)
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("jobs still running at shutdown: %w", ctx.Err())
	}
}

// Submit records a queued job and hands it to the workers. It returns at
// once with the job's ID set.
func (r *Runner) Submit(ctx context.Context, req Request) (*Job, error) {
	if _, ok := r.cfg.Project(req.Project); !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownProject, req.Project)
	}
	j := &Job{
		Project: req.Project, Trigger: req.Trigger, Status: Queued,
		Ref: req.Ref, Branch: req.Branch, Commit: req.Commit,
		DeliveryID: req.DeliveryID, Who: req.Who, Created: r.d.Now().UTC(),
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("%w: shutting down", ErrQueueFull)
	}
	if len(r.queue) == cap(r.queue) {
		return nil, ErrQueueFull
	}
	if err := r.d.Store.Create(ctx, j); err != nil {
		return nil, fmt.Errorf("record job: %w", err)
	}
	r.queue <- j.Clone()
	return j, nil
}

// run executes one job and records how it ended.
func (r *Runner) run(ctx context.Context, j *Job) {
	log := r.d.Log.With().Int64("job", j.ID).Str("project", j.Project).Str("branch", j.Branch).Logger()
	p, _ := r.cfg.Project(j.Project)
	ctx, cancel := context.WithTimeoutCause(ctx, r.cfg.Jobs.Timeout.Duration, fmt.Errorf("job timed out after %s", r.cfg.Jobs.Timeout.Duration))
	defer cancel()

	w, err := r.d.Logs.Create(j.ID)
	if err != nil {
		log.Error().Err(err).Msg("open job log")
		w = nopCloser{io.Discard}
	}
	defer w.Close()
	jl := &lockedWriter{w: w}

	j.Status, j.Started = Running, r.d.Now().UTC()
	r.save(ctx, j, log)
	log.Info().Str("commit", j.Commit).Msg("job started")
	fmt.Fprintf(jl, "job %d: %s #%d, %s at %s, triggered by %s\n", j.ID, j.Project, j.Number, j.Branch, j.Commit, j.Trigger)

	err = r.pipeline(ctx, j, p, jl)
	if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = fmt.Errorf("%w (%v)", err, cause)
	}
	j.Finished = r.d.Now().UTC()
	if err != nil {
		j.Status, j.Error = Failed, err.Error()
		fmt.Fprintf(jl, "FAILED: %v\n", err)
		log.Error().Err(err).Msg("job failed")
	} else {
		j.Status = Succeeded
		fmt.Fprintln(jl, "SUCCEEDED")
		log.Info().Dur("took", j.Finished.Sub(j.Started)).Msg("job succeeded")
	}
	// Record the end even when the job's own context is spent.
	r.save(context.WithoutCancel(ctx), j, log)
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
	r.mu.Lock()
	l, ok := r.services[name]
	if !ok {
		l = &sync.Mutex{}
		r.services[name] = l
	}
	r.mu.Unlock()
	l.Lock()
	return l.Unlock
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
