package gate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
)

const cfgText = `
registry: {host: "reg:5000"}
projects:
  - name: shop
    repo: file:///nowhere
    allow_unsigned: true
    images: [{name: shop/api}]
    deploy:
      - branch: main
        environment: staging
        services: [api_staging]
      - environment: production
        promote_from: staging
        approve: {timeout: 2h}
        services: [api]
      - branch: night
        environment: night
        windows: [{start: "0 22 * * *", duration: 2h}]
        services: [api_night]
`

func load(t *testing.T) (*config.Config, *config.Project) {
	t.Helper()
	cfg, err := config.Load(strings.NewReader(cfgText), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p, _ := cfg.Project("shop")
	return cfg, p
}

// runner is a fake job.Runner: it notes what the gate saves and hands
// back, in order (events).
type runner struct {
	mu        sync.Mutex
	continued []*job.Job
	ended     map[int64]job.Status
	why       map[int64]string
	saved     map[int64]*job.Job
	events    []string
	// saveErr, when set, is what Decided answers, saving nothing.
	saveErr error
}

func newRunner() *runner {
	return &runner{ended: map[int64]job.Status{}, why: map[int64]string{}, saved: map[int64]*job.Job{}}
}

func (r *runner) Decided(_ context.Context, j *job.Job) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.saveErr != nil {
		return r.saveErr
	}
	r.saved[j.ID] = j.Clone()
	r.events = append(r.events, fmt.Sprintf("saved %d", j.ID))
	return nil
}

func (r *runner) Continue(j *job.Job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.continued = append(r.continued, j)
	r.events = append(r.events, fmt.Sprintf("continued %d", j.ID))
}

func (r *runner) End(j *job.Job, to job.Status, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended[j.ID], r.why[j.ID] = to, why
	r.events = append(r.events, fmt.Sprintf("ended %d", j.ID))
}

// record returns a copy of what Decided saved of job id, and what the
// runner was told, in order.
func (r *runner) record(id int64) (*job.Job, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var j *job.Job
	if s, ok := r.saved[id]; ok {
		j = s.Clone()
	}
	return j, slices.Clone(r.events)
}

// endings returns a copy of how jobs ended, and why.
func (r *runner) endings() (map[int64]job.Status, map[int64]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.ended), maps.Clone(r.why)
}

// handed returns the jobs continued so far.
func (r *runner) handed() []*job.Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.continued)
}

func (r *runner) ids() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int64
	for _, j := range r.continued {
		out = append(out, j.ID)
	}
	return out
}

// attached returns a gate over cfg with o, handing jobs back to a fake
// runner.
func attached(cfg *config.Config, o Options) (*Gate, *runner) {
	r := newRunner()
	o.Log = zerolog.Nop()
	g := New(cfg, o)
	g.Attach(r)
	return g, r
}

// frozenAttached is attached with freezes kept in a file of their own.
func frozenAttached(t *testing.T, cfg *config.Config) (*Gate, *runner) {
	t.Helper()
	fs, err := OpenFreezes(filepath.Join(t.TempDir(), "freezes.json"))
	if err != nil {
		t.Fatal(err)
	}
	return attached(cfg, Options{Freezes: fs})
}

// noon is a Thursday; the night window opens at 22:00 UTC.
var noon = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func TestCheck(t *testing.T) {
	cfg, p := load(t)
	approved := []job.Decision{{Verdict: job.Approved, Who: "bob"}}
	overridden := []job.Decision{{Verdict: job.Overridden, Who: "ops", Reason: "hotfix"}}
	for _, tc := range []struct {
		name      string
		target    int
		at        time.Time
		freeze    string
		decisions []job.Decision
		want      *job.Wait
	}{
		{name: "staging goes", target: 0, at: noon},
		{name: "production needs an approval", target: 1, at: noon,
			want: &job.Wait{For: job.WaitApproval, Target: 1, Since: noon, Until: noon.Add(2 * time.Hour), Scope: "approve"}},
		{name: "approved production goes", target: 1, at: noon, decisions: approved},
		{name: "frozen environment waits after its approval", target: 1, at: noon, decisions: approved, freeze: "production",
			want: &job.Wait{For: job.WaitFreeze, Target: 1, Since: noon, Until: noon.Add(time.Hour), Reason: "release"}},
		{name: "freeze of another environment", target: 0, at: noon, freeze: "shop/production"},
		{name: "freeze of the whole project", target: 0, at: noon, freeze: "shop",
			want: &job.Wait{For: job.WaitFreeze, Target: 0, Since: noon, Until: noon.Add(time.Hour), Reason: "release"}},
		{name: "override goes through a freeze", target: 0, at: noon, freeze: "*", decisions: overridden},
		{name: "closed window", target: 2, at: noon,
			want: &job.Wait{For: job.WaitWindow, Target: 2, Since: noon, Until: time.Date(2026, 12, 3, 22, 0, 0, 0, time.UTC)}},
		{name: "open window", target: 2, at: noon.Add(11 * time.Hour)},
		{name: "override goes outside the window", target: 2, at: noon, decisions: overridden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := OpenFreezes(filepath.Join(t.TempDir(), "freezes.json"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.freeze != "" {
				if err := fs.Set(Freeze{Target: tc.freeze, Until: noon.Add(time.Hour), Reason: "release"}, noon); err != nil {
					t.Fatal(err)
				}
			}
			g := New(cfg, Options{Freezes: fs, Now: func() time.Time { return tc.at }, Log: zerolog.Nop()})
			got := g.Check(&job.Job{ID: 1, Project: "shop", Decisions: tc.decisions}, p, tc.target)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("wait (-want +got):\n%s", diff)
			}
		})
	}
}

// held returns job id of project shop waiting as Check says for target.
func heldJob(g *Gate, p *config.Project, id int64, who string, target int) *job.Job {
	j := &job.Job{ID: id, Project: "shop", Who: who, Status: job.Waiting}
	j.Wait = g.Check(j, p, target)
	return j
}

func TestApproval(t *testing.T) {
	cfg, p := load(t)
	scopes := func(s ...config.Scope) []config.Scope { return s }
	for _, tc := range []struct {
		name    string
		who     string
		scopes  []config.Scope
		wantErr error
	}{
		{"by the job's own starter", "alice", scopes(config.ScopeApprove), ErrSelfApproval},
		{"without the scope", "bob", scopes(config.ScopeDeploy), ErrScope},
		{"by another token", "bob", scopes(config.ScopeApprove), nil},
		{"by an admin", "root", scopes(config.ScopeAdmin), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g, r := attached(cfg, Options{})
				g.Hold(heldJob(g, p, 7, "alice", 1))
				_, err := g.Approve(t.Context(), 7, tc.who, "", tc.scopes)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Approve: %v, want %v", err, tc.wantErr)
				}
				if tc.wantErr != nil {
					if _, ok := g.Held(7); !ok {
						t.Fatal("a refused approval must leave the job waiting")
					}
					return
				}
				handed := r.handed()
				if len(handed) != 1 {
					t.Fatalf("continued %v, want job 7", r.ids())
				}
				d := handed[0].Decisions
				if len(d) != 1 || d[0].Verdict != job.Approved || d[0].Who != tc.who {
					t.Errorf("decisions = %+v", d)
				}
				// The expiry timer is stopped: nothing ends the job later.
				time.Sleep(3 * time.Hour)
				if ended, _ := r.endings(); len(ended) != 0 {
					t.Errorf("ended %v after its approval", ended)
				}
			})
		})
	}
}

// TestApprovalByAJoinedPusher: pushes that joined a queued build are
// its starters too (job.Job.Starters), and none of them may approve it,
// though the job's who names only the last.
func TestApprovalByAJoinedPusher(t *testing.T) {
	cfg, p := load(t)
	approver := []config.Scope{config.ScopeApprove}
	synctest.Test(t, func(t *testing.T) {
		g, r := attached(cfg, Options{})
		j := heldJob(g, p, 7, "carol", 1)
		j.Starters = []string{"alice", "carol"}
		g.Hold(j)
		for _, who := range []string{"alice", "carol"} {
			if _, err := g.Approve(t.Context(), 7, who, "", approver); !errors.Is(err, ErrSelfApproval) {
				t.Errorf("approval by %s, whose push is in the build: %v, want ErrSelfApproval", who, err)
			}
		}
		if _, err := g.Approve(t.Context(), 7, "bob", "", approver); err != nil {
			t.Fatalf("approval by bob, who pushed nothing to it: %v", err)
		}
		if diff := cmp.Diff([]int64{7}, r.ids()); diff != "" {
			t.Errorf("continued (-want +got):\n%s", diff)
		}
	})
}

func TestApprovalExpires(t *testing.T) {
	cfg, p := load(t)
	synctest.Test(t, func(t *testing.T) {
		g, r := attached(cfg, Options{})
		g.Hold(heldJob(g, p, 7, "alice", 1))
		time.Sleep(2*time.Hour - time.Second)
		synctest.Wait()
		if ended, _ := r.endings(); len(ended) != 0 {
			t.Fatalf("ended before its timeout: %v", ended)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if ended, _ := r.endings(); ended[7] != job.Expired {
			t.Fatalf("ended = %v, want job 7 expired", ended)
		}
		if _, err := g.Approve(t.Context(), 7, "bob", "", []config.Scope{config.ScopeApprove}); !errors.Is(err, ErrNotHeld) {
			t.Errorf("approving an expired job: %v, want ErrNotHeld", err)
		}
	})
}

func TestReject(t *testing.T) {
	cfg, p := load(t)
	synctest.Test(t, func(t *testing.T) {
		g, r := attached(cfg, Options{})
		g.Hold(heldJob(g, p, 7, "alice", 1))
		if _, err := g.Reject(t.Context(), 7, "bob", "not today", []config.Scope{config.ScopeApprove}); err != nil {
			t.Fatal(err)
		}
		if ended, why := r.endings(); ended[7] != job.Rejected || why[7] != "rejected by bob: not today" {
			t.Errorf("ended %v: %q", ended[7], why[7])
		}
	})
}

func TestWindowOpens(t *testing.T) {
	cfg, p := load(t)
	synctest.Test(t, func(t *testing.T) {
		// The bubble's clock starts at midnight 2000-01-01 UTC.
		g, r := attached(cfg, Options{})
		j := heldJob(g, p, 7, "alice", 2)
		if j.Wait == nil || j.Wait.For != job.WaitWindow {
			t.Fatalf("wait = %+v, want the night window", j.Wait)
		}
		g.Hold(j)
		if _, err := g.Approve(t.Context(), 7, "bob", "", []config.Scope{config.ScopeApprove}); !errors.Is(err, ErrWrongWait) {
			t.Errorf("approving a window wait: %v, want ErrWrongWait", err)
		}
		time.Sleep(time.Until(j.Wait.Until) - time.Second)
		synctest.Wait()
		if len(r.handed()) != 0 {
			t.Fatal("continued before the window opened")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if diff := cmp.Diff([]int64{7}, r.ids()); diff != "" {
			t.Errorf("continued (-want +got):\n%s", diff)
		}
	})
}

func TestDeployNow(t *testing.T) {
	cfg, p := load(t)
	synctest.Test(t, func(t *testing.T) {
		g, r := attached(cfg, Options{})
		g.Hold(heldJob(g, p, 7, "alice", 2))
		g.Hold(heldJob(g, p, 8, "alice", 1))
		if _, err := g.DeployNow(t.Context(), 7, "ops", ""); !errors.Is(err, ErrNoReason) {
			t.Errorf("override without a reason: %v", err)
		}
		if _, err := g.DeployNow(t.Context(), 8, "ops", "hotfix"); !errors.Is(err, ErrWrongWait) {
			t.Errorf("override of an approval: %v, want ErrWrongWait", err)
		}
		if _, err := g.DeployNow(t.Context(), 7, "ops", "hotfix"); err != nil {
			t.Fatal(err)
		}
		want := []job.Decision{{Verdict: job.Overridden, Who: "ops", Reason: "hotfix", At: time.Now().UTC()}}
		if diff := cmp.Diff(want, r.handed()[0].Decisions); diff != "" {
			t.Errorf("decisions (-want +got):\n%s", diff)
		}
	})
}

func TestNewerDeploySupersedes(t *testing.T) {
	cfg, p := load(t)
	synctest.Test(t, func(t *testing.T) {
		g, r := attached(cfg, Options{})
		if olds := g.Hold(heldJob(g, p, 7, "alice", 2)); len(olds) != 0 {
			t.Fatalf("nothing to supersede yet: %v", olds)
		}
		g.Hold(heldJob(g, p, 5, "alice", 1)) // another target: stays
		olds := g.Hold(heldJob(g, p, 9, "alice", 2))
		if len(olds) != 1 || olds[0].ID != 7 {
			t.Fatalf("superseded %v, want job 7", olds)
		}
		if _, ok := g.Held(7); ok {
			t.Error("job 7 still held")
		}
		// An older job handed back after a newer one (a restart) ends at once.
		g.Hold(heldJob(g, p, 8, "alice", 2))
		synctest.Wait()
		if ended, _ := r.endings(); ended[8] != job.Superseded {
			t.Errorf("job 8 ended %v, want superseded by 9", ended[8])
		}
		if olds := g.Pass(&job.Job{ID: 10}, p, 2); len(olds) != 1 || olds[0].ID != 9 {
			t.Errorf("a deploy that goes supersedes the held one: %v", olds)
		}
		if _, ok := g.Held(5); !ok {
			t.Error("job 5 waits for another target and must stay")
		}
	})
}

func TestUnfreezeReleases(t *testing.T) {
	cfg, p := load(t)
	synctest.Test(t, func(t *testing.T) {
		g, r := frozenAttached(t, cfg)
		if err := g.Freeze(Freeze{Target: "staging", Until: time.Now().Add(48 * time.Hour), Reason: "audit", Who: "ops"}); err != nil {
			t.Fatal(err)
		}
		j := heldJob(g, p, 7, "alice", 0)
		if j.Wait == nil || j.Wait.For != job.WaitFreeze || j.Wait.Reason != "audit" {
			t.Fatalf("wait = %+v, want the freeze", j.Wait)
		}
		g.Hold(j)
		if ok, err := g.Unfreeze("production"); ok || err != nil {
			t.Errorf("Unfreeze(production) = %v, %v: it was never frozen", ok, err)
		}
		if err := g.Freeze(Freeze{Target: "shop", Until: time.Now().Add(time.Hour), Who: "ops"}); err != nil {
			t.Fatal(err)
		}
		if ok, err := g.Unfreeze("staging"); !ok || err != nil {
			t.Fatalf("Unfreeze(staging) = %v, %v", ok, err)
		}
		if len(r.handed()) != 0 {
			t.Fatal("the project's freeze still covers staging: nothing may go")
		}
		if err := g.Freeze(Freeze{Target: "staging", Until: time.Now().Add(48 * time.Hour), Reason: "audit", Who: "ops"}); err != nil {
			t.Fatal(err)
		}
		if ok, err := g.Unfreeze("shop"); !ok || err != nil {
			t.Fatalf("Unfreeze(shop) = %v, %v", ok, err)
		}
		if ok, err := g.Unfreeze("staging"); !ok || err != nil {
			t.Fatalf("Unfreeze(staging) = %v, %v", ok, err)
		}
		if diff := cmp.Diff([]int64{7}, r.ids()); diff != "" {
			t.Errorf("continued (-want +got):\n%s", diff)
		}
	})
}

func TestFreezeValidation(t *testing.T) {
	cfg, _ := load(t)
	g := New(cfg, Options{Now: func() time.Time { return noon }, Log: zerolog.Nop()})
	for _, tc := range []struct {
		name   string
		f      Freeze
		wantOK bool
	}{
		{"everything", Freeze{Target: "*", Until: noon.Add(time.Hour)}, true},
		{"project", Freeze{Target: "shop", Until: noon.Add(time.Hour)}, true},
		{"environment", Freeze{Target: "production", Until: noon.Add(time.Hour)}, true},
		{"project's environment", Freeze{Target: "shop/staging", Until: noon.Add(time.Hour)}, true},
		{"unknown", Freeze{Target: "shop/qa", Until: noon.Add(time.Hour)}, false},
		{"in the past", Freeze{Target: "shop", Until: noon.Add(-time.Hour)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := g.Freeze(tc.f)
			if (err == nil) != tc.wantOK {
				t.Fatalf("Freeze: %v, want ok=%v", err, tc.wantOK)
			}
		})
	}
}

func TestFreezesOutlastARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "freezes.json")
	fs, err := OpenFreezes(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Set(Freeze{Target: "production", Until: noon.Add(time.Hour), Reason: "launch"}, noon); err != nil {
		t.Fatal(err)
	}
	if err := fs.Set(Freeze{Target: "shop", Until: noon.Add(time.Minute)}, noon); err != nil {
		t.Fatal(err)
	}
	again, err := OpenFreezes(path)
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := again.Active("shop", "production", noon.Add(30*time.Minute)); !ok || f.Reason != "launch" {
		t.Errorf("Active = %+v, %v; want the launch freeze", f, ok)
	}
	if _, ok := again.Active("shop", "staging", noon.Add(30*time.Minute)); ok {
		t.Error("the project's freeze ended at 12:01")
	}
	if n := len(again.List(noon)); n != 2 {
		t.Errorf("List at noon: %d freezes, want 2", n)
	}
}

// TestDecisionIsSavedBeforeItIsAnswered: a decision the gate answers is
// saved with the job before the job is handed back, so a runner that
// takes nothing back (it is shutting down) loses nothing; a decision
// that cannot be saved is an error, and the job still waits for one.
func TestDecisionIsSavedBeforeItIsAnswered(t *testing.T) {
	cfg, p := load(t)
	approver := []config.Scope{config.ScopeApprove}
	for _, tc := range []struct {
		name    string
		target  int
		decide  func(t *testing.T, g *Gate) (*job.Job, error)
		verdict job.Verdict
		handed  string
	}{
		{name: "approve", target: 1, verdict: job.Approved, handed: "continued 7",
			decide: func(t *testing.T, g *Gate) (*job.Job, error) { return g.Approve(t.Context(), 7, "bob", "", approver) }},
		{name: "reject", target: 1, verdict: job.Refused, handed: "ended 7",
			decide: func(t *testing.T, g *Gate) (*job.Job, error) {
				return g.Reject(t.Context(), 7, "bob", "not today", approver)
			}},
		{name: "deploy now", target: 2, verdict: job.Overridden, handed: "continued 7",
			decide: func(t *testing.T, g *Gate) (*job.Job, error) { return g.DeployNow(t.Context(), 7, "ops", "hotfix") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g, r := attached(cfg, Options{})
				g.Hold(heldJob(g, p, 7, "alice", tc.target))

				full := errors.New("disk full")
				r.mu.Lock()
				r.saveErr = full
				r.mu.Unlock()
				if _, err := tc.decide(t, g); !errors.Is(err, full) {
					t.Fatalf("decision with the store failing: %v, want its error", err)
				}
				h, ok := g.Held(7)
				if !ok || len(h.Decisions) != 0 {
					t.Fatalf("after a decision not saved: held %v with %+v, want still waiting, undecided", ok, h)
				}
				if _, events := r.record(7); len(events) != 0 {
					t.Fatalf("a decision not saved was handed on: %v", events)
				}

				r.mu.Lock()
				r.saveErr = nil
				r.mu.Unlock()
				if _, err := tc.decide(t, g); err != nil {
					t.Fatal(err)
				}
				saved, events := r.record(7)
				if diff := cmp.Diff([]string{"saved 7", tc.handed}, events); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
				if saved == nil || len(saved.Decisions) != 1 || saved.Decisions[0].Verdict != tc.verdict || saved.Status != job.Waiting {
					t.Errorf("saved %+v, want job 7 still waiting with the %s", saved, tc.verdict)
				}
			})
		})
	}
}

// TestDecisionOutlastsARestart: a job handed to the gate again at start
// with the decision that answers its wait already saved (the runner had
// shut down and took it no more) is not held for that decision again.
func TestDecisionOutlastsARestart(t *testing.T) {
	cfg, p := load(t)
	approver := []config.Scope{config.ScopeApprove}
	for _, tc := range []struct {
		name   string
		target int
		decide func(t *testing.T, g *Gate) error
		want   func(t *testing.T, r *runner)
	}{
		{name: "an approved job deploys", target: 1,
			decide: func(t *testing.T, g *Gate) error {
				_, err := g.Approve(t.Context(), 7, "bob", "", approver)
				return err
			},
			want: func(t *testing.T, r *runner) {
				if diff := cmp.Diff([]int64{7}, r.ids()); diff != "" {
					t.Errorf("continued (-want +got):\n%s", diff)
				}
			}},
		{name: "a rejected job ends rejected", target: 1,
			decide: func(t *testing.T, g *Gate) error {
				_, err := g.Reject(t.Context(), 7, "bob", "not today", approver)
				return err
			},
			want: func(t *testing.T, r *runner) {
				if ended, why := r.endings(); ended[7] != job.Rejected || why[7] != "rejected by bob: not today" {
					t.Errorf("ended %v: %q, want rejected by bob", ended[7], why[7])
				}
			}},
		{name: "an overridden job deploys", target: 2,
			decide: func(t *testing.T, g *Gate) error { _, err := g.DeployNow(t.Context(), 7, "ops", "hotfix"); return err },
			want: func(t *testing.T, r *runner) {
				if diff := cmp.Diff([]int64{7}, r.ids()); diff != "" {
					t.Errorf("continued (-want +got):\n%s", diff)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				before, r := attached(cfg, Options{})
				before.Hold(heldJob(before, p, 7, "alice", tc.target))
				if err := tc.decide(t, before); err != nil {
					t.Fatal(err)
				}
				saved, _ := r.record(7)
				if saved == nil {
					t.Fatal("the decision was not saved")
				}

				after, r := attached(cfg, Options{})
				after.Hold(saved)
				if _, ok := after.Held(7); ok {
					t.Error("held again after a restart for a decision already made")
				}
				tc.want(t, r)
				// Nothing ends it later: its expiry or window is no timer.
				time.Sleep(24 * time.Hour)
				synctest.Wait()
				if ended, _ := r.endings(); len(ended) > 1 {
					t.Errorf("ended %v", ended)
				}
			})
		})
	}
}

// TestApprovedJobWaitsForAFreezeAfterARestart: an approval answers an
// approval wait only; a job approved and then held for a freeze still
// waits for the freeze after a restart.
func TestApprovedJobWaitsForAFreezeAfterARestart(t *testing.T) {
	cfg, p := load(t)
	synctest.Test(t, func(t *testing.T) {
		g, r := frozenAttached(t, cfg)
		if err := g.Freeze(Freeze{Target: "production", Until: time.Now().Add(time.Hour), Who: "ops"}); err != nil {
			t.Fatal(err)
		}
		j := &job.Job{ID: 7, Project: "shop", Who: "alice", Status: job.Waiting,
			Decisions: []job.Decision{{Verdict: job.Approved, Who: "bob"}}}
		j.Wait = g.Check(j, p, 1)
		if j.Wait == nil || j.Wait.For != job.WaitFreeze {
			t.Fatalf("wait = %+v, want the freeze", j.Wait)
		}
		g.Hold(j)
		if _, ok := g.Held(7); !ok || len(r.handed()) != 0 {
			t.Error("an approval let a job through a freeze")
		}
	})
}
