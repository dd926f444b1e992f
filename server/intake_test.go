package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/source"
	"github.com/swarmhook/swarmhook/store"
)

// fixture is the hook handler on the real runner and SQLite store in a
// directory of the test's own, with no fake between them: the coalescing
// and redelivery rules are theirs. Only fetching is faked, and fails, so
// a job that runs ends at once; until the test starts the runner, builds
// wait. The clock is the test's to move.
type fixture struct {
	srv    *Server
	runner *job.Runner
	store  *store.SQLite
	// jobs is what the server submits to: the runner, unless a test
	// makes it fail.
	jobs *failingJobs
	log  *syncBuffer
	// ended hears of every job that reaches a final status.
	ended chan *job.Job
	clock time.Time
}

// failingJobs is the runner, but for Submit failing with err when set:
// the runner's errors a test cannot cheaply cause (a full queue, a full
// disk).
type failingJobs struct {
	*job.Runner
	err error
}

func (f *failingJobs) Submit(ctx context.Context, req job.Request) (*job.Job, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.Runner.Submit(ctx, req)
}

func (f *fixture) JobChanged(j *job.Job) {
	if j.Status.Final() {
		f.ended <- j
	}
}

// noFetch is a job.Source whose fetch always fails.
type noFetch struct{}

func (noFetch) Checkout(context.Context, source.Repo, string, string, string, io.Writer) (string, error) {
	return "", errors.New("no fetching in this test")
}

func (noFetch) Head(context.Context, source.Repo, string) (string, error) { return "", nil }

// newFixture opens a fixture in a directory of the test's own, at noon
// on 1 May 2026, and checks at the end that the hook secret reached no
// log line.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := openFixture(t, t.TempDir(), time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	t.Cleanup(func() {
		f.runner.Shutdown(context.Background())
		f.store.Close()
		if strings.Contains(f.log.String(), hookSecret) {
			t.Errorf("the secret reached the log:\n%s", f.log)
		}
	})
	return f
}

// openFixture opens the store in dir, as a process starting there does:
// the runner resumes what it holds.
func openFixture(t *testing.T, dir string, clock time.Time) *fixture {
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
	f := &fixture{store: st, log: &syncBuffer{}, ended: make(chan *job.Job, 16), clock: clock}
	log := zerolog.New(f.log)
	now := func() time.Time { return f.clock }
	f.runner = job.NewRunner(cfg, job.Deps{Store: st, Logs: logs, Source: noFetch{}, Log: log, Observers: []job.Observer{f}, Now: now})
	if err := f.runner.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.jobs = &failingJobs{Runner: f.runner}
	f.srv = New(Deps{Config: cfg, Jobs: f.jobs, Store: st, Logs: logs, Deliveries: f.runner, Log: log, Now: now})
	return f
}

// submitted returns the builds the runner holds, oldest first, as the
// requests they stand for now (a waiting build as the newest push that
// joined it).
func (f *fixture) submitted(t *testing.T) []job.Request {
	t.Helper()
	jobs, err := f.store.List(context.Background(), store.Filter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	var out []job.Request
	for _, j := range slices.Backward(jobs) {
		if w, ok := f.runner.Waiting(j.ID); ok {
			j = w
		}
		out = append(out, job.Request{Project: j.Project, Trigger: j.Trigger, Ref: j.Ref, Branch: j.Branch,
			Commit: j.Commit, DeliveryID: j.DeliveryID, Who: j.Who})
	}
	return out
}

// apiGet decodes the answer to GET path as the API's reader sees it.
func (f *fixture) apiGet(t *testing.T, path string, out any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer reader-token-0123456789")
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	if err := json.Unmarshal(rec.Body.Bytes(), out); rec.Code != http.StatusOK || err != nil {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
}

func (f *fixture) push(id, commit string) (int, map[string]any) {
	body := githubPush("refs/heads/main", commit, "")
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
	in := openFixture(t, dir, at)
	want := func(step string, code int, a map[string]any, wantCode int, wantJob float64, coalesced bool) {
		t.Helper()
		if code != wantCode || a["job"] != wantJob || (a["coalesced"] == true) != coalesced {
			t.Errorf("%s: %d %v, want %d naming job %v (coalesced %v)", step, code, a, wantCode, wantJob, coalesced)
		}
	}
	code, a := in.push("d-1", commitA)
	want("first push", code, a, 202, 1, false)
	code, a = in.push("d-2", commitB)
	want("second push", code, a, 202, 1, true)

	// The API shows the waiting build as it stands now, though its
	// record gets the joined push only when it starts.
	var one job.Job
	var list struct{ Jobs []job.Job }
	in.apiGet(t, "/api/jobs/1", &one)
	in.apiGet(t, "/api/jobs", &list)
	for _, j := range append([]job.Job{one}, list.Jobs...) {
		if j.ID != 1 || j.Status != job.Queued || j.Pushes != 2 || j.Commit != commitB || j.DeliveryID != "d-2" {
			t.Errorf("the waiting build through the API: %+v, want job 1 queued at the second push, counting 2", j)
		}
	}
	if j, _ := in.store.Get(ctx, 1); j.Pushes != 1 {
		t.Errorf("the record counts %d pushes before the build starts, want 1 (the test shows nothing otherwise)", j.Pushes)
	}
	code, a = in.push("d-2", commitB)
	want("redelivery of the push held in memory", code, a, 200, 1, false)
	code, a = in.push("d-1", commitA)
	want("redelivery of the push in the store", code, a, 200, 1, false)

	// A crash: the joined push was never written. The queued build is
	// still there, and the lost push's redelivery joins it again.
	in.store.Close()
	in = openFixture(t, dir, at.Add(time.Minute))
	if j, err := in.store.Get(ctx, 1); err != nil || j.Status != job.Queued || j.Pushes != 1 {
		t.Fatalf("job 1 after the crash: %+v %v, want queued with the first push", j, err)
	}
	code, a = in.push("d-2", commitB)
	want("redelivery after the crash", code, a, 202, 1, true)
	code, a = in.push("d-3", commitC)
	want("third push", code, a, 202, 1, true)

	// A clean stop writes the joined pushes with the build.
	if err := in.runner.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	in.store.Close()
	in = openFixture(t, dir, at.Add(2*time.Minute))
	t.Cleanup(func() { in.store.Close() })
	if j, err := in.store.Get(ctx, 1); err != nil || j.Status != job.Queued || j.Pushes != 3 || j.Commit != commitC {
		t.Fatalf("job 1 after a clean stop: %+v %v, want queued at the third push, counting 3", j, err)
	}
	for _, id := range []string{"d-1", "d-2", "d-3"} {
		code, a = in.push(id, commitA)
		want("redelivery of "+id+" after a clean stop", code, a, 200, 1, false)
	}

	// The build runs (and fails to fetch); a push after it starts a new one.
	in.runner.Start(ctx)
	if j := <-in.ended; j.ID != 1 || j.Status != job.Failed {
		t.Errorf("job 1 ended %s, want failed", j.Status)
	}
	code, a = in.push("d-4", commitA)
	want("a push after the build ran", code, a, 202, 2, false)
	<-in.ended
	if err := in.runner.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if all, err := in.store.List(ctx, store.Filter{}); err != nil || len(all) != 2 {
		t.Errorf("%d jobs stored (%v), want 2 for four pushes and their redeliveries", len(all), err)
	}
}
