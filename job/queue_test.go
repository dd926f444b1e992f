package job

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
)

func newTestRunner(t *testing.T, rec *recorder, concurrency int) *Runner {
	t.Helper()
	cfg, err := config.Load(strings.NewReader(fmt.Sprintf(shopConfig, t.TempDir())+fmt.Sprintf("jobs: {concurrency: %d}\n", concurrency)),
		func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return NewRunner(cfg, Deps{Store: rec, Logs: discardLogs{}, Source: rec, Builder: rec, Registry: rec, Updater: rec, Log: zerolog.Nop()})
}

// waitStatus waits until every goroutine of the test's bubble is blocked
// (synctest.Wait), then checks job id's status: call it in a bubble.
func waitStatus(t *testing.T, rec *recorder, id int64, want Status) {
	t.Helper()
	synctest.Wait()
	if got := rec.job(id).Status; got != want {
		t.Fatalf("job %d is %s, want %s", id, got, want)
	}
}

func TestBurstOfPushesCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		rec.current["worker"] = "reg:5000/shop/api:x@sha256:old"
		rec.gate = make(chan struct{})
		r := newTestRunner(t, rec, 2)
		ctx := context.Background()
		r.Start(ctx)

		var ids []int64
		for i := 0; i < 20; i++ {
			who := []string{"alice", "bob", "carol"}[i%3]
			j, err := r.Submit(ctx, Request{Project: "shop", Ref: "refs/heads/main", Branch: "main", Commit: fmt.Sprintf("c%02d", i), Who: who})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, j.ID)
			if i == 0 {
				waitStatus(t, rec, j.ID, Running) // the first build holds the lane
			}
		}
		close(rec.gate) // let every build through
		if err := r.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		// Shutdown does not start queued jobs; start again to drain the lane.
		r2 := newTestRunner(t, rec, 2)
		r2.Start(ctx)
		if err := r2.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, rec, ids[19], Succeeded)
		r2.Shutdown(ctx)

		if builds := rec.builds(); builds != 2 {
			t.Errorf("%d builds ran, want 2 (first and last): %v", builds, rec.calls)
		}
		if last := rec.calls[len(rec.calls)-1]; last != "retag shop/web main-latest" {
			t.Errorf("last call %q", last)
		}
		// The second push queued a build and the other 18 joined it: two
		// jobs for twenty pushes, the second standing for nineteen of them.
		for i, id := range ids[1:] {
			if id != ids[1] {
				t.Errorf("push %d is in job %d, want the waiting job %d", i+1, id, ids[1])
			}
		}
		if rec.nextID != 2 {
			t.Errorf("%d jobs recorded for a burst, want 2", rec.nextID)
		}
		if j := rec.job(ids[0]); j.Status != Succeeded || j.Pushes != 1 {
			t.Errorf("first job is %s with %d pushes, want succeeded with 1", j.Status, j.Pushes)
		}
		if j := rec.job(ids[19]); j.Status != Succeeded || j.Pushes != 19 || j.Commit != "c19" {
			t.Errorf("waiting job is %s at %s with %d pushes, want succeeded at c19 with 19", j.Status, j.Commit, j.Pushes)
		}
		// Everyone whose push joined it is kept with the job, through the
		// restart: none of them may approve its deploy.
		j := rec.job(ids[19])
		if diff := cmp.Diff([]string{"bob", "carol", "alice"}, j.Starters); diff != "" {
			t.Errorf("starters (-want +got):\n%s", diff)
		}
		if j.Who != "bob" || !j.StartedBy("carol") || !j.StartedBy("alice") || j.StartedBy("dave") {
			t.Errorf("who %q, starters %v: StartedBy must know every pusher", j.Who, j.Starters)
		}
		if j := rec.job(ids[0]); len(j.Starters) != 0 {
			t.Errorf("a build nothing joined lists starters %v", j.Starters)
		}
	})
}

func TestDifferentBranchesBuildSideBySide(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		rec.gate = make(chan struct{})
		r := newTestRunner(t, rec, 2)
		ctx := context.Background()
		r.Start(ctx)
		a, _ := r.Submit(ctx, Request{Project: "shop", Ref: "refs/heads/a", Branch: "a", Commit: "ca"})
		b, _ := r.Submit(ctx, Request{Project: "shop", Ref: "refs/heads/b", Branch: "b", Commit: "cb"})
		waitStatus(t, rec, a.ID, Running)
		waitStatus(t, rec, b.ID, Running)
		c, _ := r.Submit(ctx, Request{Project: "shop", Ref: "refs/heads/c", Branch: "c", Commit: "cc"})
		synctest.Wait()
		if s := rec.job(c.ID).Status; s != Queued {
			t.Errorf("third branch is %s with concurrency 2, want queued", s)
		}
		close(rec.gate)
		waitStatus(t, rec, c.ID, Succeeded)
		r.Shutdown(ctx)
	})
}

func TestResumeMarksRunningInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		ctx := context.Background()
		running := &Job{Project: "shop", Action: ActionBuild, Status: Running, Branch: "main", Ref: "refs/heads/main", Commit: "c1"}
		queued := &Job{Project: "shop", Action: ActionBuild, Status: Queued, Branch: "dev", Ref: "refs/heads/dev", Commit: "c2"}
		rec.Create(ctx, running, nil)
		rec.Create(ctx, queued, nil)

		r := newTestRunner(t, rec, 1)
		r.Start(ctx)
		if err := r.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, rec, queued.ID, Succeeded)
		r.Shutdown(ctx)
		got := rec.job(running.ID)
		if got.Status != Interrupted || got.Error == "" || got.Finished.IsZero() {
			t.Errorf("running job after restart: %+v", got)
		}
		if strings.Contains(strings.Join(rec.calls, ","), "c1") {
			t.Error("an interrupted job was run again")
		}
	})
}

func TestShutdownInterruptsAfterGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		rec.gate = make(chan struct{}) // never opened: the build hangs
		r := newTestRunner(t, rec, 1)
		ctx := context.Background()
		r.Start(ctx)
		j, _ := r.Submit(ctx, Request{Project: "shop", Ref: "refs/heads/main", Branch: "main", Commit: "c"})
		waitStatus(t, rec, j.ID, Running)
		grace, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if err := r.Shutdown(grace); err == nil {
			t.Error("Shutdown reported a clean stop with a job still running")
		}
		if got := rec.job(j.ID); got.Status != Interrupted {
			t.Errorf("job is %s after shutdown, want interrupted", got.Status)
		}
		if _, err := r.Submit(ctx, Request{Project: "shop", Branch: "main"}); !errors.Is(err, ErrShuttingDown) {
			t.Errorf("Submit after shutdown: %v", err)
		}
	})
}

// builds counts the builds that ran (each starts with a checkout).
func (r *recorder) builds() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if strings.HasPrefix(c, "checkout") {
			n++
		}
	}
	return n
}

// holdMain starts a runner whose builds wait for rec.gate, with a first
// build of main running.
func holdMain(t *testing.T, concurrency int) (*recorder, *Runner, *Job) {
	t.Helper()
	rec := newRecorder()
	rec.current["worker"] = "reg:5000/shop/api:x@sha256:old"
	rec.gate = make(chan struct{})
	r := newTestRunner(t, rec, concurrency)
	r.Start(context.Background())
	first, err := r.Submit(context.Background(), Request{Project: "shop", Ref: "refs/heads/main", Branch: "main", Commit: "c-first"})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, rec, first.ID, Running)
	return rec, r, first
}

// TestFailedSubmitQueuesNothing: a build whose record could not be
// written is not queued, and the builds that wait are not lost with it.
func TestFailedSubmitQueuesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec, r, _ := holdMain(t, 1)
		ctx := context.Background()
		waiting, _ := r.Submit(ctx, Request{Project: "shop", Ref: "refs/heads/main", Branch: "main", Commit: "c2"})

		rec.mu.Lock()
		rec.createErr = errors.New("disk full")
		rec.mu.Unlock()
		d := &Delivery{Provider: "github", ID: "shop/d3", At: time.Now()}
		if _, err := r.Submit(ctx, Request{Project: "shop", Ref: "refs/heads/feature/x", Branch: "feature/x", Commit: "c3", Delivery: d}); err == nil {
			t.Fatal("Submit reported success although its job was not recorded")
		}
		if jobs, seen, _ := r.Delivery(ctx, "github", "shop/d3", time.Now().Add(-time.Hour)); seen {
			t.Errorf("the delivery of the failed Submit is remembered as starting %v", jobs)
		}
		rec.mu.Lock()
		rec.createErr = nil
		rec.mu.Unlock()

		close(rec.gate)
		waitStatus(t, rec, waiting.ID, Succeeded) // not lost with the failed push
		r.Shutdown(ctx)
		if strings.Contains(strings.Join(rec.calls, ","), "c3") {
			t.Error("the push whose job was never recorded was built")
		}
	})
}

func TestConcurrentPushesToOneBranchBuildTheNewest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec, r, _ := holdMain(t, 2)
		ctx := context.Background()

		const n = 50
		ids := make(chan *Job, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				j, err := r.Submit(ctx, Request{Project: "shop", Ref: "refs/heads/main", Branch: "main", Commit: fmt.Sprintf("c%02d", i)})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- j
			}()
		}
		wg.Wait()
		close(ids)
		newest := int64(0)
		answered := map[int64]int{} // pushes per job, as Submit answered
		for j := range ids {
			newest = max(newest, j.ID)
			answered[j.ID]++
		}
		close(rec.gate)
		waitStatus(t, rec, newest, Succeeded)
		r.Shutdown(ctx)

		// Every push is in the job Submit named: the jobs' push counts add
		// up to what was answered, one by one.
		for id, pushes := range answered {
			j := rec.job(id)
			if j.Pushes != pushes {
				t.Errorf("job %d counts %d pushes, %d were answered with it", id, j.Pushes, pushes)
			}
			if id != newest && (j.Status != Superseded || j.SupersededBy <= id) {
				t.Errorf("job %d is %s by %d, want superseded by a newer job", id, j.Status, j.SupersededBy)
			}
		}
		if checkouts := rec.builds(); checkouts != 2 {
			t.Errorf("%d builds ran, want 2 (the first and the newest): %v", checkouts, rec.calls)
		}
	})
}
