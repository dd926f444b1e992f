package server

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/source"
	"github.com/swarmhook/swarmhook/store"
)

// realIntake is the hook handler on the real runner and SQLite store in
// dir, with no fake between them; only fetching is faked, and fails, so
// a job that runs ends at once.
type realIntake struct {
	srv    *Server
	runner *job.Runner
	store  *store.SQLite
	// ended hears of every job that reaches a final status.
	ended chan *job.Job
	clock time.Time
}

func (r *realIntake) JobChanged(j *job.Job) {
	if j.Status.Final() {
		r.ended <- j
	}
}

// noFetch is a job.Source whose fetch always fails.
type noFetch struct{}

func (noFetch) Checkout(context.Context, source.Repo, string, string, string, io.Writer) (string, error) {
	return "", errors.New("no fetching in this test")
}

func (noFetch) Head(context.Context, source.Repo, string) (string, error) { return "", nil }

func openIntake(t *testing.T, dir string, clock time.Time) *realIntake {
	t.Helper()
	cfg, err := config.Load(strings.NewReader(testConfig+"data_dir: "+dir+"\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "swarmhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	logs, err := store.NewLogDir(filepath.Join(dir, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	in := &realIntake{store: st, ended: make(chan *job.Job, 16), clock: clock}
	in.runner = job.NewRunner(cfg, job.Deps{Store: st, Logs: logs, Source: noFetch{}, Log: zerolog.Nop(),
		Observers: []job.Observer{in}, Now: func() time.Time { return in.clock }})
	if err := in.runner.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	in.srv = New(Deps{Config: cfg, Jobs: in.runner, Store: st, Deliveries: in.runner, Log: zerolog.Nop(),
		Now: func() time.Time { return in.clock }})
	return in
}

func (r *realIntake) send(t *testing.T, id, commit string) (int, map[string]any) {
	t.Helper()
	body := githubPush("refs/heads/main", commit, "")
	f := &fixture{srv: r.srv}
	return f.send(delivery{project: "shop", header: signedGitHub("push", id, body), body: body})
}

// TestCoalescingAndRedeliveryOnTheRealStore: a push to a branch whose
// build waits joins it in memory; a redelivery is known before that push
// is written (the queue has it) and after (the store has it), across a
// clean stop and a crash, and never builds twice.
func TestCoalescingAndRedeliveryOnTheRealStore(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	commitB := strings.Repeat("b", 40)
	commitC := strings.Repeat("c", 40)

	// No workers yet: the first build waits.
	in := openIntake(t, dir, at)
	want := func(step string, code int, a map[string]any, wantCode int, wantJob float64, coalesced bool) {
		t.Helper()
		if code != wantCode || a["job"] != wantJob || (a["coalesced"] == true) != coalesced {
			t.Errorf("%s: %d %v, want %d naming job %v (coalesced %v)", step, code, a, wantCode, wantJob, coalesced)
		}
	}
	code, a := in.send(t, "d-1", commitA)
	want("first push", code, a, 202, 1, false)
	code, a = in.send(t, "d-2", commitB)
	want("second push", code, a, 202, 1, true)
	code, a = in.send(t, "d-2", commitB)
	want("redelivery of the push held in memory", code, a, 200, 1, false)
	code, a = in.send(t, "d-1", commitA)
	want("redelivery of the push in the store", code, a, 200, 1, false)

	// A crash: the joined push was never written. The queued build is
	// still there, and the lost push's redelivery joins it again.
	in.store.Close()
	in = openIntake(t, dir, at.Add(time.Minute))
	if j, err := in.store.Get(ctx, 1); err != nil || j.Status != job.Queued || j.Pushes != 1 {
		t.Fatalf("job 1 after the crash: %+v %v, want queued with the first push", j, err)
	}
	code, a = in.send(t, "d-2", commitB)
	want("redelivery after the crash", code, a, 202, 1, true)
	code, a = in.send(t, "d-3", commitC)
	want("third push", code, a, 202, 1, true)

	// A clean stop writes the joined pushes with the build.
	if err := in.runner.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	in.store.Close()
	in = openIntake(t, dir, at.Add(2*time.Minute))
	t.Cleanup(func() { in.store.Close() })
	if j, err := in.store.Get(ctx, 1); err != nil || j.Status != job.Queued || j.Pushes != 3 || j.Commit != commitC {
		t.Fatalf("job 1 after a clean stop: %+v %v, want queued at the third push, counting 3", j, err)
	}
	for _, id := range []string{"d-1", "d-2", "d-3"} {
		code, a = in.send(t, id, commitA)
		want("redelivery of "+id+" after a clean stop", code, a, 200, 1, false)
	}

	// The build runs (and fails to fetch); a push after it starts a new one.
	in.runner.Start(ctx)
	if j := <-in.ended; j.ID != 1 || j.Status != job.Failed {
		t.Errorf("job 1 ended %s, want failed", j.Status)
	}
	code, a = in.send(t, "d-4", commitA)
	want("a push after the build ran", code, a, 202, 2, false)
	<-in.ended
	if err := in.runner.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if all, err := in.store.List(ctx, store.Filter{}); err != nil || len(all) != 2 {
		t.Errorf("%d jobs stored (%v), want 2 for four pushes and their redeliveries", len(all), err)
	}
}
