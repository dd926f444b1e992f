package gate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/window"
)

// Errors of the decisions people make about held deploys; the API maps
// them to HTTP statuses.
var (
	// ErrNotHeld: the job is not waiting (it never did, or it ended).
	ErrNotHeld = errors.New("gate: job is not waiting")
	// ErrWrongWait: the job waits for something this decision does not
	// answer (an approval, or a window or freeze).
	ErrWrongWait = errors.New("gate: job waits for something else")
	// ErrSelfApproval: a token may not approve a job it started.
	ErrSelfApproval = errors.New("gate: a job may not be approved by who started it")
	// ErrScope: the token lacks the scope the target's approval needs.
	ErrScope = errors.New("gate: token lacks the scope for this approval")
	// ErrNoReason: an override must say why.
	ErrNoReason = errors.New("gate: an override needs a reason")
	// ErrPast: a freeze must end in the future.
	ErrPast = errors.New("gate: a freeze must end in the future")
)

// Runner takes back the jobs the gate held; job.Runner is one.
// Continue and End return at once.
type Runner interface {
	// Decided saves held job j's record with the decision just added to
	// its Decisions, still waiting, and returns once it is saved (or not,
	// with why). The gate calls it before it answers a decision or
	// hands j back, under its lock, so a decision it answers outlasts
	// a restart; it must not call the gate.
	Decided(ctx context.Context, j *job.Job) error
	// Continue deploys j, asking the gate again first.
	Continue(j *job.Job)
	// End ends j with final status to, for reason why.
	End(j *job.Job, to job.Status, why string)
}

// Options are a Gate's collaborators.
type Options struct {
	// Freezes are the freezes in force; nil has none and takes none.
	Freezes *Freezes
	// Now is the clock; time.Now when nil. Timers are the time
	// package's, so tests run in a testing/synctest bubble.
	Now func() time.Time
	Log zerolog.Logger
}

// Gate holds deploys; see the package comment. It is safe for
// concurrent use. Attach its Runner before the first job reaches it.
type Gate struct {
	cfg     *config.Config
	freezes *Freezes
	now     func() time.Time
	log     zerolog.Logger

	mu     sync.Mutex
	runner Runner
	held   map[int64]*held
}

// held is a job the gate keeps, with the timer that ends its wait.
type held struct {
	j     *job.Job
	lane  string
	timer *time.Timer
}

func (h *held) stop() {
	if h.timer != nil {
		h.timer.Stop()
	}
}

// New returns a gate for the deploy targets of cfg.
func New(cfg *config.Config, o Options) *Gate {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Freezes == nil {
		o.Freezes = &Freezes{}
	}
	return &Gate{cfg: cfg, freezes: o.Freezes, now: o.Now, log: o.Log, held: map[int64]*held{}}
}

// Attach names the runner held jobs go back to.
func (g *Gate) Attach(r Runner) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.runner = r
}

// lane is the key of target i of project: one deploy waits per target.
func lane(project string, i int) string { return project + "\x00" + strconv.Itoa(i) }

// Check says what holds a deploy of j to target i of p now, if anything:
// first an approval the target needs and j lacks, then (unless someone
// overrode them for j) a freeze in force, then the target's windows
// being closed.
func (g *Gate) Check(j *job.Job, p *config.Project, i int) *job.Wait {
	t := &p.Deploy[i]
	now := g.now().UTC()
	if a := t.Approve; a != nil && !decided(j, job.Approved) {
		return &job.Wait{For: job.WaitApproval, Target: i, Since: now, Until: now.Add(a.Timeout.Duration), Scope: string(a.Scope)}
	}
	if decided(j, job.Overridden) {
		return nil
	}
	if f, ok := g.freezes.Active(p.Name, t.Environment, now); ok {
		return &job.Wait{For: job.WaitFreeze, Target: i, Since: now, Until: f.Until.UTC(), Reason: f.Reason}
	}
	ws := windows(t)
	if !ws.Open(now) {
		w := &job.Wait{For: job.WaitWindow, Target: i, Since: now}
		if next := ws.NextOpen(now); !next.IsZero() {
			w.Until = next.UTC()
		}
		return w
	}
	return nil
}

// windows are target t's deploy windows; Load validated them.
func windows(t *config.Deploy) window.Set {
	var s window.Set
	for _, w := range t.Windows {
		if win, err := window.Parse(w.Start, w.Duration.Duration, w.TimeZone); err == nil {
			s = append(s, win)
		}
	}
	return s
}

func decided(j *job.Job, v job.Verdict) bool {
	return slices.ContainsFunc(j.Decisions, func(d job.Decision) bool { return d.Verdict == v })
}

// Pass notes that j deploys now to target i of p: the deploys that
// waited for that target are superseded, and returned.
func (g *Gate) Pass(j *job.Job, p *config.Project, i int) []*job.Job {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dropLane(lane(p.Name, i), j.ID)
}

// dropLane stops holding the jobs waiting in lane l but job keep, and
// returns them.
func (g *Gate) dropLane(l string, keep int64) []*job.Job {
	var out []*job.Job
	for id, h := range g.held {
		if h.lane == l && id != keep {
			h.stop()
			delete(g.held, id)
			out = append(out, h.j)
		}
	}
	slices.SortFunc(out, func(a, b *job.Job) int { return int(a.ID - b.ID) })
	return out
}

// Hold keeps j, recorded as waiting for j.Wait, until its wait ends: an
// approval's expiry ends it expired, a window's opening or a freeze's
// end hands it back to the runner. A newer job already waiting for the
// same target supersedes j at once; otherwise j supersedes the older
// ones, which Hold returns. A j whose record already has the decision
// that answers its wait (saved by Approve, Reject or DeployNow just
// before a shutdown, which kept the runner from taking it) is not held:
// it goes back to the runner at once, as that decision says.
func (g *Gate) Hold(j *job.Job) []*job.Job {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := lane(j.Project, j.Wait.Target)
	for _, h := range g.held {
		if h.lane == l && h.j.ID > j.ID {
			// Only at start, when jobs are handed back oldest first, or
			// in a race of two targets' jobs: the newer one wins.
			j.SupersededBy = h.j.ID
			go g.runner.End(j, job.Superseded, fmt.Sprintf("job %d waits to deploy to the same target", h.j.ID))
			return nil
		}
	}
	if d, ok := answer(j); ok {
		g.log.Info().Int64("job", j.ID).Str("verdict", string(d.Verdict)).Msg("held deploy was decided before a restart")
		if d.Verdict == job.Refused {
			g.runner.End(j, job.Rejected, rejection(d))
		} else {
			g.runner.Continue(j)
		}
		return nil
	}
	olds := g.dropLane(l, j.ID)
	h := &held{j: j, lane: l}
	g.held[j.ID] = h
	var fire func()
	switch j.Wait.For {
	case job.WaitApproval:
		fire = func() { g.expire(j.ID) }
	default:
		fire = func() { g.release(j.ID) }
	}
	if !j.Wait.Until.IsZero() { // else only a person ends the wait
		h.timer = time.AfterFunc(j.Wait.Until.Sub(g.now()), fire)
	}
	g.log.Info().Int64("job", j.ID).Str("for", string(j.Wait.For)).Time("until", j.Wait.Until).Msg("deploy held")
	return olds
}

// answer returns the decision that answers what j waits for, if its
// last decision does: an approval or a rejection of an approval wait,
// an override of a window or freeze.
func answer(j *job.Job) (job.Decision, bool) {
	if len(j.Decisions) == 0 {
		return job.Decision{}, false
	}
	d := j.Decisions[len(j.Decisions)-1]
	if (j.Wait.For == job.WaitApproval) == (d.Verdict != job.Overridden) {
		return d, true
	}
	return job.Decision{}, false
}

// rejection is why a job ends rejected by d.
func rejection(d job.Decision) string {
	why := "rejected by " + d.Who
	if d.Reason != "" {
		why += ": " + d.Reason
	}
	return why
}

// take stops holding job id and returns it, if held.
func (g *Gate) take(id int64) (*job.Job, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h, ok := g.held[id]
	if !ok {
		return nil, false
	}
	h.stop()
	delete(g.held, id)
	return h.j, true
}

// expire ends job id's wait for an approval that did not come.
func (g *Gate) expire(id int64) {
	j, ok := g.take(id)
	if !ok {
		return
	}
	g.runner.End(j, job.Expired, fmt.Sprintf("no approval by %s", j.Wait.Until.UTC().Format(time.RFC3339)))
}

// release hands job id back to the runner: its window opened or its
// freeze ended.
func (g *Gate) release(id int64) {
	if j, ok := g.take(id); ok {
		g.runner.Continue(j)
	}
}

// Held returns a copy of held job id.
func (g *Gate) Held(id int64) (*job.Job, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h, ok := g.held[id]
	if !ok {
		return nil, false
	}
	return h.j.Clone(), true
}

// Approve lets held job id deploy, approved by token who (with an
// optional reason), which carries scopes: it must have the scope the
// target's approval names (or admin), and may not be one that started
// the job, nor one whose push or request joined it (job.Job.StartedBy).
// The approval is saved with the job before Approve returns (see
// decide): an error means the job still waits, unapproved.
func (g *Gate) Approve(ctx context.Context, id int64, who, reason string, scopes []config.Scope) (*job.Job, error) {
	j, err := g.decide(ctx, id, who, scopes, job.Decision{Verdict: job.Approved, Reason: reason})
	if err != nil {
		return nil, err
	}
	g.runner.Continue(j)
	return j.Clone(), nil
}

// Reject ends held job id as rejected by who, for reason; saved first,
// as Approve.
func (g *Gate) Reject(ctx context.Context, id int64, who, reason string, scopes []config.Scope) (*job.Job, error) {
	j, err := g.decide(ctx, id, who, scopes, job.Decision{Verdict: job.Refused, Reason: reason})
	if err != nil {
		return nil, err
	}
	g.runner.End(j, job.Rejected, rejection(j.Decisions[len(j.Decisions)-1]))
	return j.Clone(), nil
}

// DeployNow lets held job id deploy outside its target's windows or
// through a freeze, overridden by who for reason; the job records both.
// A job waiting for an approval must be approved first. The override is
// saved first, as Approve.
func (g *Gate) DeployNow(ctx context.Context, id int64, who, reason string) (*job.Job, error) {
	if reason == "" {
		return nil, ErrNoReason
	}
	j, err := g.decide(ctx, id, who, nil, job.Decision{Verdict: job.Overridden, Reason: reason})
	if err != nil {
		return nil, err
	}
	g.runner.Continue(j)
	return j.Clone(), nil
}

// decide records decision d by who on held job id, after checking it
// answers what the job waits for, and stops holding the job. The
// decision is saved (Runner.Decided) before it stops holding it: the
// runner may take no job back once it shuts down, and the next start
// finds the decision with the job and acts on it (see Hold), rather
// than wait for a decision already answered. If the save fails, the job
// stays held, undecided, and decide returns why. The save is made under
// the gate's lock, so the job's expiry cannot end it meanwhile.
func (g *Gate) decide(ctx context.Context, id int64, who string, scopes []config.Scope, d job.Decision) (*job.Job, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h, ok := g.held[id]
	if !ok {
		return nil, fmt.Errorf("%w: job %d", ErrNotHeld, id)
	}
	j := h.j
	approval := j.Wait.For == job.WaitApproval
	switch {
	case d.Verdict == job.Overridden && approval:
		return nil, fmt.Errorf("%w: job %d waits for an approval, which an override does not replace", ErrWrongWait, id)
	case d.Verdict != job.Overridden && !approval:
		return nil, fmt.Errorf("%w: job %d waits for its %s, not an approval", ErrWrongWait, id, j.Wait.For)
	case approval && !slices.Contains(scopes, config.Scope(j.Wait.Scope)) && !slices.Contains(scopes, config.ScopeAdmin):
		return nil, fmt.Errorf("%w: it needs %q", ErrScope, j.Wait.Scope)
	case d.Verdict == job.Approved && j.StartedBy(who):
		return nil, fmt.Errorf("%w: %s started job %d or joined it", ErrSelfApproval, who, id)
	}
	d.Who, d.At = who, g.now().UTC()
	j = j.Clone()
	j.Decisions = append(j.Decisions, d)
	if err := g.runner.Decided(ctx, j); err != nil {
		return nil, fmt.Errorf("save the decision on job %d (%s): %w", id, d.Verdict, err)
	}
	h.stop()
	delete(g.held, id)
	return j, nil
}

// Freeze records freeze f (its Target checked by CheckTarget); deploys
// it covers that are ready meanwhile wait for its end.
func (g *Gate) Freeze(f Freeze) error {
	if err := CheckTarget(g.cfg, f.Target); err != nil {
		return err
	}
	now := g.now().UTC()
	if !f.Until.After(now) {
		return fmt.Errorf("%w: until %s", ErrPast, f.Until.Format(time.RFC3339))
	}
	f.Since = now
	return g.freezes.Set(f, now)
}

// Unfreeze lifts the freeze of target, and hands the deploys it held
// (those waiting for a freeze that no other freeze now covers) back to
// the runner, which asks the gate again; false when target had no
// freeze.
func (g *Gate) Unfreeze(target string) (bool, error) {
	now := g.now()
	found, err := g.freezes.Lift(target, now)
	if err != nil || !found {
		return found, err
	}
	g.mu.Lock()
	var ids []int64
	for id, h := range g.held {
		if h.j.Wait.For == job.WaitFreeze && !g.frozen(h.j, now) {
			ids = append(ids, id)
		}
	}
	g.mu.Unlock()
	for _, id := range ids {
		g.release(id)
	}
	return true, nil
}

// frozen reports whether a freeze still covers the target held job j
// waits for.
func (g *Gate) frozen(j *job.Job, now time.Time) bool {
	p, ok := g.cfg.Project(j.Project)
	if !ok || j.Wait.Target < 0 || j.Wait.Target >= len(p.Deploy) {
		return false // the runner finds out, and says so
	}
	_, ok = g.freezes.Active(p.Name, p.Deploy[j.Wait.Target].Environment, now)
	return ok
}

// Freezes returns the freezes in force.
func (g *Gate) Freezes() []Freeze { return g.freezes.List(g.now()) }
