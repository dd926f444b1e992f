package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/swarmhook/swarmhook/config"
)

// Gate holds deploys that may not start yet: until a person approves
// them, until a deploy window opens, until a freeze ends. The gate
// package implements it. Its methods are safe for concurrent use and
// return at once; it later calls Runner.Continue or Runner.End for each
// job it holds.
type Gate interface {
	// Check says whether j may deploy now to target i of project p: nil,
	// or the wait that holds it. It changes nothing.
	Check(j *Job, p *config.Project, i int) *Wait
	// Pass tells the gate that j deploys now to target i of p. It
	// returns the jobs that waited to deploy there: j supersedes them,
	// and the gate holds them no longer.
	Pass(j *Job, p *config.Project, i int) []*Job
	// Hold keeps j, recorded as Waiting for j.Wait, until the gate lets
	// it go (Runner.Continue) or ends it (Runner.End). It returns the
	// jobs that waited to deploy to the same target, as Pass does.
	Hold(j *Job) []*Job
}

// errHeld ends a job's run as Waiting: the gate holds its deploy.
var errHeld = errors.New("deploy held by the gate")

// targetIndex is the index of target in p.Deploy.
func targetIndex(p *config.Project, target *config.Deploy) int {
	for i := range p.Deploy {
		if &p.Deploy[i] == target {
			return i
		}
	}
	return -1
}

// gateDeploy asks the gate, if there is one, whether j may deploy to
// target now. It returns nil when it may, superseding the deploys that
// waited for the same target; or errHeld, with j.Wait and j.Stage saying
// what it waits for.
func (r *Runner) gateDeploy(ctx context.Context, j *Job, p *config.Project, target *config.Deploy, w io.Writer) error {
	i := targetIndex(p, target)
	if r.d.Gate == nil || i < 0 {
		return nil
	}
	wait := r.d.Gate.Check(j, p, i)
	if wait == nil {
		r.supersede(ctx, j, r.d.Gate.Pass(j, p, i))
		return nil
	}
	j.Wait = wait
	j.Stage = &CurrentStage{Name: wait.StageName(), Started: wait.Since}
	fmt.Fprintf(w, "==> %s", wait.StageName())
	if !wait.Until.IsZero() {
		what := "until"
		if wait.For == WaitApproval {
			what = "expires at"
		}
		fmt.Fprintf(w, " (%s %s)", what, wait.Until.UTC().Format(time.RFC3339))
	}
	if wait.Reason != "" {
		fmt.Fprintf(w, ": %s", Printable(wait.Reason))
	}
	fmt.Fprintln(w)
	return errHeld
}

// gated reports whether the gate would hold a deploy of j to target now.
func (r *Runner) gated(j *Job, p *config.Project, target *config.Deploy) bool {
	i := targetIndex(p, target)
	return r.d.Gate != nil && i >= 0 && r.d.Gate.Check(j, p, i) != nil
}

// hold records j as waiting and hands it to the gate; the deploys that
// waited for the same target are superseded by it.
func (r *Runner) hold(ctx context.Context, j *Job, w io.Writer) {
	fmt.Fprintf(w, "WAITING: the job holds no worker until its deploy may go\n")
	r.transition(ctx, j, Waiting)
	r.supersede(ctx, j, r.d.Gate.Hold(j.Clone()))
}

// supersede ends the held deploys olds, replaced by newer job j.
func (r *Runner) supersede(ctx context.Context, j *Job, olds []*Job) {
	for _, old := range olds {
		old.SupersededBy = j.ID
		r.appendLog(old, fmt.Sprintf("SUPERSEDED: job %d deploys to the same target", j.ID))
		if err := r.transition(ctx, old, Superseded); err != nil {
			r.d.Log.Error().Err(err).Int64("job", old.ID).Msg("superseded held deploy not recorded")
		}
	}
}

// Decided saves j, a job the gate holds, with the decision a person
// just made about it (the last of j.Decisions), before the gate answers
// that decision or hands j back: a decision answered is kept, even if
// swarmhook stops before j continues or ends, and the next start acts on
// it (the gate's Hold). It works after Shutdown too, as long as the
// store is open; j's status stays Waiting.
func (r *Runner) Decided(ctx context.Context, j *Job) error {
	if err := r.d.Store.Save(ctx, j); err != nil {
		return fmt.Errorf("save job %d: %w", j.ID, err)
	}
	if n := len(j.Decisions); n > 0 {
		d := j.Decisions[n-1]
		log := r.jobLog(j)
		log.Info().Str("verdict", string(d.Verdict)).Str("who", d.Who).Msg("held deploy decided")
	}
	return nil
}

// Continue deploys j, a job the gate held and now lets go, on a
// goroutine of its own: the gate is asked again (a freeze may have
// begun meanwhile), then j deploys and tags as its pipeline would have.
// After Shutdown it does nothing: j stays waiting in the store, with
// the decision that let it go (saved by Decided), and the next start
// hands it to the gate again, which lets it go at once.
func (r *Runner) Continue(j *Job) {
	r.mu.Lock()
	closed, ctx := r.closed, r.baseCtx
	if !closed && ctx != nil {
		// Under the lock Shutdown sets closed with, so the Add comes
		// before its Wait, never beside it.
		r.wg.Add(1)
	}
	r.mu.Unlock()
	if closed || ctx == nil {
		return
	}
	go func() {
		defer r.wg.Done()
		r.run(ctx, j, nil, r.deployHeld)
	}()
}

// End ends j, a job the gate held, as to (Rejected, Expired,
// Superseded), saying why in its record and its log. It returns at once
// with j reading as ended; the log line and the save (retried while
// data_dir is full, see saveEnd) happen on a goroutine of their own,
// on a copy. After Shutdown it does nothing: j stays waiting in the
// store (with a rejection, when Decided saved one), and the next start
// hands it to the gate again, which ends it then.
func (r *Runner) End(j *Job, to Status, why string) {
	r.mu.Lock()
	closed, ctx := r.closed, r.baseCtx
	if !closed {
		r.wg.Add(1) // under the lock Shutdown closes with, as Continue
	}
	r.mu.Unlock()
	if closed {
		return
	}
	if ctx == nil {
		ctx = context.Background()
	}
	j.Error = why
	r.endWait(j)
	j.Status, j.Finished = to, r.d.Now().UTC()
	e := j.Clone()
	go func() {
		defer r.wg.Done()
		r.appendLog(e, fmt.Sprintf("%s: %s", to, Printable(why)))
		r.transition(ctx, e, to)
	}()
}

// appendLog adds one line to j's log.
func (r *Runner) appendLog(j *Job, line string) {
	w, err := r.d.Logs.Create(j.ID)
	if err != nil {
		log := r.jobLog(j)
		log.Error().Err(err).Msg("open job log")
		return
	}
	lw := &escaper{w: w}
	fmt.Fprintln(lw, line)
	lw.Close()
}

// deployHeld is what a held job does once the gate lets it go: deploy
// to the target it waited for and, for a build, move -latest.
func (r *Runner) deployHeld(ctx context.Context, j *Job, w io.Writer) error {
	p, ok := r.cfg.Project(j.Project)
	if !ok || j.Wait == nil || j.Wait.Target < 0 || j.Wait.Target >= len(p.Deploy) || !waitedFor(p, j, &p.Deploy[j.Wait.Target]) {
		return errors.New("the deploy target this job waited for is no longer configured")
	}
	for _, d := range j.Decisions {
		fmt.Fprintf(w, "%s by %s%s\n", d.Verdict, Printable(d.Who), reasonSuffix(d.Reason))
	}
	r.endWait(j)
	target := &p.Deploy[j.Wait.Target]
	if err := r.gateDeploy(ctx, j, p, target, w); err != nil {
		return err
	}
	if err := r.deploy(ctx, j, p, target, w); err != nil {
		return err
	}
	if j.Action == ActionPromote {
		return nil
	}
	return r.tagLatest(ctx, j, w)
}

// waitedFor reports whether target is still the one held job j was
// to deploy to: j names it by its index, which a config changed across
// a restart may give to another target.
func waitedFor(p *config.Project, j *Job, target *config.Deploy) bool {
	if j.Action == ActionPromote {
		return target.Environment == j.Environment
	}
	t, ok := p.DeployFor(j.Branch)
	return ok && t == target
}

// endWait records the wait j was in, if any, as a finished stage.
func (r *Runner) endWait(j *Job) {
	if j.Stage == nil {
		return
	}
	s := Stage{Name: j.Stage.Name, Started: j.Stage.Started, Finished: r.d.Now().UTC()}
	s.Millis = s.Finished.Sub(s.Started).Milliseconds()
	j.Stages = append(j.Stages, s)
	j.Stage = nil
}

func reasonSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + Printable(reason)
}
