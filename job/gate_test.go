package job

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
)

// fakeGate holds every deploy to target 0 for an approval until the job
// carries one, and notes what it is told.
type fakeGate struct {
	mu     sync.Mutex
	held   []*Job
	passed []int64
}

func (g *fakeGate) Check(j *Job, _ *config.Project, i int) *Wait {
	if i != 0 || slices.ContainsFunc(j.Decisions, func(d Decision) bool { return d.Verdict == Approved }) {
		return nil
	}
	return &Wait{For: WaitApproval, Target: i, Scope: "approve"}
}

func (g *fakeGate) Pass(j *Job, _ *config.Project, _ int) []*Job {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.passed = append(g.passed, j.ID)
	return nil
}

func (g *fakeGate) Hold(j *Job) []*Job {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = append(g.held, j)
	var olds []*Job
	for _, h := range g.held[:len(g.held)-1] {
		if h.Status == Waiting {
			olds = append(olds, h)
			h.Status = Superseded
		}
	}
	return olds
}

const gatedConfig = `
registry: {host: "reg:5000"}
data_dir: %s
jobs: {concurrency: 1}
projects:
  - name: shop
    repo: file:///nowhere
    images: [{name: shop/api}]
    deploy:
      - branch: main
        environment: production
        services: [{name: api, image: shop/api}]
      - branch: other
        services: [{name: api_other, image: shop/api}]
`

// gated starts a runner over rec with gate g in a synctest bubble and
// runs fn with it; the runner is shut down after.
func gated(t *testing.T, rec *recorder, cfgText string, g Gate, fn func(r *Runner)) {
	t.Helper()
	cfg, err := config.Load(strings.NewReader(fmt.Sprintf(cfgText, t.TempDir())), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		r := NewRunner(cfg, Deps{Store: rec, Logs: discardLogs{}, Source: rec, Builder: rec, Registry: rec, Updater: rec,
			Log: zerolog.Nop(), Gate: g})
		r.Start(context.Background())
		fn(r)
		synctest.Wait()
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

func push(branch, commit string) Request {
	return Request{Project: "shop", Trigger: TriggerPush, Ref: "refs/heads/" + branch, Branch: branch, Commit: commit, Who: "alice"}
}

func TestHeldDeployFreesItsWorker(t *testing.T) {
	rec := newRecorder()
	g := &fakeGate{}
	var held, other *Job
	gated(t, rec, gatedConfig, g, func(r *Runner) {
		ctx := context.Background()
		j, err := r.Submit(ctx, push("main", "c1"))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		held = rec.job(j.ID)
		// One worker: this build runs only if the held one let it go.
		o, err := r.Submit(ctx, push("other", "c2"))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		other = rec.job(o.ID)
	})
	if held.Status != Waiting || held.Wait == nil || held.Wait.For != WaitApproval {
		t.Fatalf("held job: status %s, wait %+v", held.Status, held.Wait)
	}
	if held.Stage == nil || held.Stage.Name != "waiting for approval" {
		t.Errorf("stage = %+v, want waiting for approval", held.Stage)
	}
	if len(held.Images) != 1 || held.Images[0].Digest == "" {
		t.Errorf("a held build keeps its pushed images: %+v", held.Images)
	}
	if slices.Contains(rec.calls, "update api reg:5000/shop/api") {
		t.Error("the held deploy ran")
	}
	if other.Status != Succeeded {
		t.Errorf("the other branch's build: %s %s; the held one must not keep the only worker", other.Status, other.Error)
	}
	if len(g.held) != 1 || g.held[0].ID != held.ID {
		t.Errorf("gate holds %v", g.held)
	}
}

// heldApproved pushes main, lets the gate hold its deploy, and returns
// the job's id and a copy of the held job approved by bob.
func heldApproved(t *testing.T, r *Runner, g *fakeGate) (int64, *Job) {
	t.Helper()
	j, err := r.Submit(context.Background(), push("main", "c1"))
	if err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	h := g.held[0].Clone()
	h.Decisions = append(h.Decisions, Decision{Verdict: Approved, Who: "bob", At: time.Now()})
	return j.ID, h
}

// approvedRun runs fn in a gated runner (shut down after) with main's
// build held and h, a copy of it approved by bob (heldApproved); it
// returns the store and the job's id.
func approvedRun(t *testing.T, fn func(r *Runner, h *Job)) (*recorder, int64) {
	t.Helper()
	rec := newRecorder()
	g := &fakeGate{}
	var id int64
	gated(t, rec, gatedConfig, g, func(r *Runner) {
		var h *Job
		id, h = heldApproved(t, r, g)
		fn(r, h)
	})
	return rec, id
}

func TestContinueDeploysAndTags(t *testing.T) {
	rec, id := approvedRun(t, func(r *Runner, h *Job) { r.Continue(h) })
	j := rec.job(id)
	if j.Status != Succeeded {
		t.Fatalf("status %s: %s", j.Status, j.Error)
	}
	for _, call := range []string{"update api reg:5000/shop/api", "retag shop/api main-latest"} {
		if !slices.Contains(rec.calls, call) {
			t.Errorf("no %q in %v", call, rec.calls)
		}
	}
	if len(j.Decisions) != 1 || j.Decisions[0].Who != "bob" {
		t.Errorf("decisions = %+v", j.Decisions)
	}
	if j.Wait == nil || j.Wait.For != WaitApproval {
		t.Errorf("the record keeps what it waited for: %+v", j.Wait)
	}
	if len(j.Stages) < 4 || j.Stages[3].Name != "waiting for approval" {
		t.Errorf("stages %+v: the wait is recorded after fetch, build and push", j.Stages)
	}
}

// TestDecidedOutlastsShutdown: a decision made while swarmhook shuts
// down is saved with the held job although the runner takes it back no
// more; the next start hands the job, decision and all, to the gate.
func TestDecidedOutlastsShutdown(t *testing.T) {
	rec, id := approvedRun(t, func(r *Runner, h *Job) {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := r.Decided(context.Background(), h); err != nil {
			t.Fatal(err)
		}
		r.Continue(h) // shut down: does nothing
	})
	j := rec.job(id)
	if j.Status != Waiting || len(j.Decisions) != 1 || j.Decisions[0].Who != "bob" {
		t.Fatalf("stored job: %s with %+v, want still waiting, approved by bob", j.Status, j.Decisions)
	}
	if slices.Contains(rec.calls, "update api reg:5000/shop/api") {
		t.Error("deployed after shutdown")
	}
	g2 := &fakeGate{}
	gated(t, rec, gatedConfig, g2, func(r *Runner) {
		if err := r.Resume(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	if len(g2.held) != 1 || len(g2.held[0].Decisions) != 1 {
		t.Fatalf("after restart the gate has %+v, want job %d with its approval", g2.held, id)
	}
}

func TestEndRecordsWhy(t *testing.T) {
	rec := newRecorder()
	g := &fakeGate{}
	var id int64
	gated(t, rec, gatedConfig, g, func(r *Runner) {
		j, _ := r.Submit(context.Background(), push("main", "c1"))
		id = j.ID
		synctest.Wait()
		r.End(g.held[0].Clone(), Expired, "no approval by 12:00")
	})
	if j := rec.job(id); j.Status != Expired || j.Error != "no approval by 12:00" || j.Finished.IsZero() {
		t.Errorf("job: %s %q finished %v", j.Status, j.Error, j.Finished)
	}
}

func TestNewerHeldBuildSupersedes(t *testing.T) {
	rec := newRecorder()
	g := &fakeGate{}
	var first, second int64
	gated(t, rec, gatedConfig, g, func(r *Runner) {
		j, _ := r.Submit(context.Background(), push("main", "c1"))
		first = j.ID
		synctest.Wait()
		j, _ = r.Submit(context.Background(), push("main", "c2"))
		second = j.ID
	})
	if j := rec.job(first); j.Status != Superseded || j.SupersededBy != second {
		t.Errorf("first: %s by %d, want superseded by %d", j.Status, j.SupersededBy, second)
	}
	if j := rec.job(second); j.Status != Waiting {
		t.Errorf("second: %s, want waiting", j.Status)
	}
}

func TestResumeHandsWaitingJobsToTheGate(t *testing.T) {
	rec := newRecorder()
	g := &fakeGate{}
	rec.jobs[1] = &Job{ID: 1, Project: "shop", Action: ActionBuild, Status: Waiting, Wait: &Wait{For: WaitApproval}}
	rec.nextID = 1
	gated(t, rec, gatedConfig, g, func(r *Runner) {
		if err := r.Resume(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	if len(g.held) != 1 || g.held[0].ID != 1 {
		t.Fatalf("gate holds %v, want job 1 again", g.held)
	}
	if j := rec.job(1); j.Status != Waiting {
		t.Errorf("status after restart: %s, want still waiting", j.Status)
	}
}

const promoteConfig = `
registry: {host: "reg:5000"}
data_dir: %s
projects:
  - name: shop
    repo: file:///nowhere
    images: [{name: shop/api}, {name: shop/web}]
    deploy:
      - branch: main
        environment: staging
        services: [{name: api_staging, image: shop/api}, web_staging]
      - environment: production
        promote_from: staging
        services: [web, {name: api, image: shop/api}]
`

func TestPromote(t *testing.T) {
	const (
		api = "reg:5000/shop/api:main-20261126101500@sha256:aaa"
		web = "reg:5000/shop/web:main-20261126101500@sha256:bbb"
	)
	for _, tc := range []struct {
		name     string
		current  map[string]string
		want     Status
		wantErr  string
		wantRefs map[string]string
	}{
		{
			name:     "deploys the digests staging runs",
			current:  map[string]string{"api_staging": api, "web_staging": web, "web": "reg:5000/shop/web:old@sha256:000", "api": "reg:5000/shop/api:old@sha256:111"},
			want:     Succeeded,
			wantRefs: map[string]string{"web": web, "api": api},
		},
		{
			name:    "a staging service without a digest",
			current: map[string]string{"api_staging": "reg:5000/shop/api:main", "web_staging": web, "web": web},
			want:    Failed, wantErr: "names no digest",
		},
		{
			name:    "a production service whose image staging does not run",
			current: map[string]string{"api_staging": api, "web_staging": api, "web": "reg:5000/shop/web:old@sha256:000"},
			want:    Failed, wantErr: "no service of staging runs it",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			rec.current = tc.current
			j := runWith(t, rec, promoteConfig, Request{Project: "shop", Action: ActionPromote, Trigger: TriggerManual, From: "staging", Environment: "production", Who: "alice"})
			if j.Status != tc.want || !strings.Contains(j.Error, tc.wantErr) {
				t.Fatalf("status %s %q, want %s with %q", j.Status, j.Error, tc.want, tc.wantErr)
			}
			for _, c := range rec.calls {
				if strings.HasPrefix(c, "build") || strings.HasPrefix(c, "push") || strings.HasPrefix(c, "retag") {
					t.Errorf("a promotion called %q", c)
				}
			}
			got := map[string]string{}
			for _, s := range j.Services {
				got[s.Service] = s.Image
			}
			if tc.wantRefs == nil {
				if len(got) != 0 {
					t.Errorf("a failed resolve changed services: %v", got)
				}
				return
			}
			if len(got) != len(tc.wantRefs) {
				t.Errorf("services = %v, want %v", got, tc.wantRefs)
			}
			for s, ref := range tc.wantRefs {
				if got[s] != ref {
					t.Errorf("%s set to %q, want %q", s, got[s], ref)
				}
			}
		})
	}
}

// TestHeldDeployGoesOnlyToTheTargetItWaitedFor: a held job names its
// target by its index in the project's deploy list; after a restart with
// the targets moved, that index is another target, and the job fails
// rather than deploy there.
func TestHeldDeployGoesOnlyToTheTargetItWaitedFor(t *testing.T) {
	rec, id := approvedRun(t, func(r *Runner, h *Job) {
		h.Wait.Target = 1 // as if the config now lists branch other's target there
		r.Continue(h)
	})
	j := rec.job(id)
	if j.Status != Failed || !strings.Contains(j.Error, "no longer") {
		t.Errorf("job %s %q, want failed saying its target is no longer configured", j.Status, j.Error)
	}
	for _, c := range rec.calls {
		if strings.HasPrefix(c, "update api_other") {
			t.Errorf("%q: the held build of main deployed to branch other's target", c)
		}
	}
}

// TestEndReturnsAtOnce: End is called on an API request (a rejection)
// and the gate's timers, and says it returns at once; with data_dir
// full its save is retried in the background, not in the caller.
func TestEndReturnsAtOnce(t *testing.T) {
	rec := newRecorder()
	g := &fakeGate{}
	var id int64
	gated(t, rec, gatedConfig, g, func(r *Runner) {
		j, _ := r.Submit(context.Background(), push("main", "c1"))
		id = j.ID
		synctest.Wait()
		rec.mu.Lock()
		rec.failEnds = 3
		rec.mu.Unlock()
		h := g.held[0].Clone()
		start := time.Now()
		r.End(h, Rejected, "rejected by bob")
		if took := time.Since(start); took > 0 {
			t.Errorf("End took %s with data_dir full: it waited for the save", took)
		}
		if h.Status != Rejected || h.Error != "rejected by bob" {
			t.Errorf("the caller's job reads %s %q, want rejected with the reason", h.Status, h.Error)
		}
	})
	if j := rec.job(id); j.Status != Rejected || j.Error != "rejected by bob" {
		t.Errorf("stored job: %s %q, want it saved rejected once space returned", j.Status, j.Error)
	}
}
