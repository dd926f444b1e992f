package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/imageref"
	"github.com/swarmhook/swarmhook/source"
	"github.com/swarmhook/swarmhook/updater"
)

// recorder is one fake for every stage: it notes each call in order and
// fails the calls named in failOn.
type recorder struct {
	mu      sync.Mutex
	calls   []string
	failOn  map[string]error
	current map[string]string // service -> image it runs now
	jobs    map[int64]*Job
	nextID  int64
	gate    chan struct{} // when set, each build waits for a value
	// deliveries are the delivery records, by provider and id.
	deliveries map[string][]int64
	// createErr, when set, fails every Create and Delivery.
	createErr error
	// pushErrs are returned by the next pushes, one each, before they
	// succeed again.
	pushErrs []error
	requests []builder.Request // every build request, in order
	// failEnds fails that many saves of a job's end (a final status)
	// with errNoSpace; endSaves counts them all.
	failEnds, endSaves int
}

// errNoSpace stands in for the store's error when data_dir is full.
var errNoSpace = errors.New("store: data_dir full: database or disk is full")

func newRecorder() *recorder {
	return &recorder{failOn: map[string]error{}, current: map[string]string{}, jobs: map[int64]*Job{}, deliveries: map[string][]int64{}}
}

func (r *recorder) note(call string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
	return r.failOn[call]
}

func (r *recorder) Checkout(_ context.Context, repo source.Repo, ref, commit, dest string, _ io.Writer) (string, error) {
	return commit, r.note("checkout " + ref + " " + commit)
}

func (r *recorder) Head(_ context.Context, _ source.Repo, ref string) (string, error) {
	return "head-of-" + ref, r.note("head " + ref)
}

func (r *recorder) Build(ctx context.Context, req builder.Request, _ io.Writer) (string, error) {
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	r.mu.Lock()
	r.requests = append(r.requests, req)
	r.mu.Unlock()
	if err := r.note("build " + req.Tags[0]); err != nil {
		return "", err
	}
	return "sha256:local", nil
}

func (r *recorder) Push(_ context.Context, ref string, _ io.Writer) (string, error) {
	r.mu.Lock()
	var queued error
	if len(r.pushErrs) > 0 {
		queued, r.pushErrs = r.pushErrs[0], r.pushErrs[1:]
	}
	r.mu.Unlock()
	if err := r.note("push " + ref); err != nil || queued != nil {
		if queued != nil {
			return "", queued
		}
		return "", err
	}
	return "sha256:" + strings.Repeat(string(ref[len(ref)-20]), 4), nil
}

func (r *recorder) Host() string                { return "reg:5000" }
func (r *recorder) Ref(repo, tag string) string { return "reg:5000/" + repo + ":" + tag }

func (r *recorder) Retag(_ context.Context, repo, from, to, want string, _ io.Writer) (string, error) {
	return want, r.note("retag " + repo + " " + to)
}

func (r *recorder) Digest(_ context.Context, repo, tag string) (string, error) {
	if err := r.note("digest " + repo + ":" + tag); err != nil {
		return "", err
	}
	return "sha256:" + tag, nil
}

func (r *recorder) Rollback(_ context.Context, service string, _ time.Duration, _ io.Writer) (updater.Result, error) {
	return updater.Result{Service: service, Outcome: updater.RolledBack}, r.note("rollback " + service)
}

func (r *recorder) Redeploy(_ context.Context, service string, _ time.Duration, _ io.Writer) (updater.Result, error) {
	return updater.Result{Service: service, Outcome: updater.Updated}, r.note("redeploy " + service)
}

func (r *recorder) Scale(_ context.Context, service string, n uint64, _ time.Duration, _ io.Writer) (updater.Result, error) {
	return updater.Result{Service: service, Outcome: updater.Updated}, r.note(fmt.Sprintf("scale %s %d", service, n))
}

func (r *recorder) CurrentImage(_ context.Context, service string) (string, error) {
	return r.current[service], nil
}

func (r *recorder) Update(_ context.Context, req updater.Request, _ io.Writer) (updater.Result, error) {
	err := r.note("update " + req.Service + " " + imageref.Repository(req.Image))
	res := updater.Result{Service: req.Service, Image: req.Image, Outcome: updater.Updated, Previous: r.current[req.Service]}
	if err != nil {
		res.Outcome = updater.RolledBack
	}
	return res, err
}

func (r *recorder) Create(_ context.Context, j *Job, d *Delivery) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.createErr != nil {
		return r.createErr
	}
	r.nextID++
	j.ID, j.Number = r.nextID, r.nextID
	r.jobs[j.ID] = j.Clone()
	if d != nil {
		r.deliveries[d.Provider+" "+d.ID] = append(append([]int64(nil), d.Earlier...), j.ID)
	}
	return nil
}

// Delivery fails like Create, and knows the deliveries saved.
func (r *recorder) Delivery(_ context.Context, provider, id string, _ time.Time) ([]int64, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.createErr != nil {
		return nil, false, r.createErr
	}
	jobs, ok := r.deliveries[provider+" "+id]
	return jobs, ok, nil
}

func (r *recorder) Save(_ context.Context, j *Job, ds ...*Delivery) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if j.Status.Final() {
		r.endSaves++
		if r.failEnds > 0 {
			r.failEnds--
			return errNoSpace
		}
	}
	r.jobs[j.ID] = j.Clone()
	for _, d := range ds {
		r.deliveries[d.Provider+" "+d.ID] = append(append([]int64(nil), d.Earlier...), j.ID)
	}
	return nil
}

func (r *recorder) Unfinished(context.Context) ([]*Job, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Job
	for id := int64(1); id <= r.nextID; id++ {
		if j, ok := r.jobs[id]; ok && !j.Status.Final() {
			out = append(out, j.Clone())
		}
	}
	return out, nil
}

// ends returns how many saves of a job's end there were.
func (r *recorder) ends() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.endSaves
}

func (r *recorder) job(id int64) *Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.jobs[id].Clone()
}

type discardLogs struct{}

func (discardLogs) Create(int64) (io.WriteCloser, error) { return nopCloser{io.Discard}, nil }

const shopConfig = `
registry: {host: "reg:5000"}
data_dir: %s
projects:
  - name: shop
    repo: file:///nowhere
    images: [{name: shop/api}, {name: shop/web, context: web}]
    deploy:
      - branch: main
        services: [{name: api, image: shop/api}, worker, {name: web, image: shop/web}]
`

func runOne(t *testing.T, rec *recorder, branch string) *Job {
	t.Helper()
	return runWith(t, rec, shopConfig, Request{Project: "shop", Trigger: TriggerPush, Ref: "refs/heads/" + branch, Branch: branch, Commit: "c0ffee"})
}

func runWith(t *testing.T, rec *recorder, cfgText string, req Request) *Job {
	t.Helper()
	return runWithDeps(t, rec, cfgText, req, nil)
}

// runWithLogs is runWith with the job logs going to logs.
func runWithLogs(t *testing.T, rec *recorder, cfgText string, req Request, logs Logs) *Job {
	t.Helper()
	return runWithDeps(t, rec, cfgText, req, func(d *Deps) { d.Logs = logs })
}

// runWithDeps is runWith where adjust may replace some of the recorder's
// roles before the runner starts.
func runWithDeps(t *testing.T, rec *recorder, cfgText string, req Request, adjust func(*Deps)) *Job {
	t.Helper()
	cfg, err := config.Load(strings.NewReader(fmt.Sprintf(cfgText, t.TempDir())), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 11, 26, 10, 15, 0, 0, time.UTC)
	var id int64
	// In a bubble: the job has run once every goroutine waits. adjust
	// runs in it, so channels it makes block durably.
	synctest.Test(t, func(t *testing.T) {
		d := Deps{Store: rec, Logs: discardLogs{}, Source: rec, Builder: rec, Registry: rec, Updater: rec,
			Log: zerolog.Nop(), Now: func() time.Time { return clock }}
		if adjust != nil {
			adjust(&d)
		}
		r := NewRunner(cfg, d)
		ctx := context.Background()
		r.Start(ctx)
		j, err := r.Submit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		id = j.ID
		synctest.Wait()
		if err := r.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	})
	return rec.job(id)
}

func TestPipelineOrder(t *testing.T) {
	rec := newRecorder()
	rec.current["worker"] = "reg:5000/shop/api:main-20261101000000@sha256:old"
	j := runOne(t, rec, "main")
	if j.Status != Succeeded {
		t.Fatalf("status %s: %s", j.Status, j.Error)
	}
	want := []string{
		"checkout refs/heads/main c0ffee",
		"build reg:5000/shop/api:main-20261126101500",
		"build reg:5000/shop/web:main-20261126101500",
		"push reg:5000/shop/api:main-20261126101500",
		"push reg:5000/shop/web:main-20261126101500",
		"update api reg:5000/shop/api",
		"update worker reg:5000/shop/api",
		"update web reg:5000/shop/web",
		"retag shop/api main-latest",
		"retag shop/web main-latest",
	}
	if diff := cmp.Diff(want, rec.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if j.Images[0].Ref != "reg:5000/shop/api:main-20261126101500@"+j.Images[0].Digest {
		t.Errorf("image ref = %q", j.Images[0].Ref)
	}
	var stages []string
	for _, s := range j.Stages {
		stages = append(stages, s.Name)
	}
	if diff := cmp.Diff([]string{"fetch", "build", "push", "deploy api", "deploy worker", "deploy web", "tag"}, stages); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
}

func TestPipelineStopsAtFirstFailure(t *testing.T) {
	tests := []struct {
		name      string
		failOn    string
		wantLast  string
		wantError string
		services  map[string]updater.Outcome
	}{
		{name: "build", failOn: "build reg:5000/shop/web:main-20261126101500", wantLast: "build reg:5000/shop/web:main-20261126101500", wantError: "build: image shop/web"},
		{name: "second push moves no -latest", failOn: "push reg:5000/shop/web:main-20261126101500", wantLast: "push reg:5000/shop/web:main-20261126101500", wantError: "push:"},
		{
			name: "retag after the deploy", failOn: "retag shop/api main-latest", wantLast: "retag shop/api main-latest", wantError: "tag:",
			services: map[string]updater.Outcome{"api": updater.Updated, "worker": updater.Updated, "web": updater.Updated},
		},
		{
			name: "update leaves later services and -latest untouched", failOn: "update worker reg:5000/shop/api", wantLast: "update worker reg:5000/shop/api", wantError: "deploy worker",
			services: map[string]updater.Outcome{"api": updater.Updated, "worker": updater.RolledBack, "web": updater.Skipped},
		},
		{
			name: "last service rolled back moves no -latest", failOn: "update web reg:5000/shop/web", wantLast: "update web reg:5000/shop/web", wantError: "deploy web",
			services: map[string]updater.Outcome{"api": updater.Updated, "worker": updater.Updated, "web": updater.RolledBack},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			rec.current["worker"] = "reg:5000/shop/api:x@sha256:old"
			rec.failOn[tt.failOn] = errors.New("boom")
			j := runOne(t, rec, "main")
			if j.Status != Failed || !strings.Contains(j.Error, tt.wantError) {
				t.Errorf("status %s, error %q; want failed with %q", j.Status, j.Error, tt.wantError)
			}
			if last := rec.calls[len(rec.calls)-1]; last != tt.wantLast {
				t.Errorf("last call %q, want %q (calls %v)", last, tt.wantLast, rec.calls)
			}
			// -latest stays on what the services run: a failure before
			// or during the deploy moves none.
			for _, c := range rec.calls {
				if strings.HasPrefix(c, "retag") && !strings.HasPrefix(tt.failOn, "retag") {
					t.Errorf("%q though the job failed at %q", c, tt.failOn)
				}
			}
			if tt.services != nil {
				got := map[string]updater.Outcome{}
				for _, s := range j.Services {
					got[s.Service] = s.Outcome
				}
				if diff := cmp.Diff(tt.services, got); diff != "" {
					t.Errorf("service outcomes (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestServiceRunningForeignImageFails(t *testing.T) {
	rec := newRecorder()
	rec.current["worker"] = "docker.io/library/nginx:1"
	j := runOne(t, rec, "main")
	if j.Status != Failed || !strings.Contains(j.Error, "none of project shop's images") {
		t.Errorf("status %s, error %q", j.Status, j.Error)
	}
	for _, c := range rec.calls {
		if strings.HasPrefix(c, "update web") {
			t.Error("web was updated after worker failed")
		}
	}
}

func TestBranchWithoutDeployTargetOnlyBuilds(t *testing.T) {
	rec := newRecorder()
	j := runOne(t, rec, "feature/Login")
	if j.Status != Succeeded {
		t.Fatalf("status %s: %s", j.Status, j.Error)
	}
	for _, c := range rec.calls {
		if strings.HasPrefix(c, "update") {
			t.Errorf("a branch without a deploy target deployed: %s", c)
		}
	}
	comp := "feature-login-48fad0826e2169c7150d" // and a hash of feature/Login: see tagpolicy
	if j.Images[0].Tag != comp+"-20261126101500" || j.Images[0].LatestTag != comp+"-latest" {
		t.Errorf("tags = %+v", j.Images[0])
	}
	// Without a deploy target -latest moves once every image is pushed.
	want := []string{"push reg:5000/shop/web:" + comp + "-20261126101500", "retag shop/api " + comp + "-latest", "retag shop/web " + comp + "-latest"}
	if got := rec.calls[len(rec.calls)-3:]; !slices.Equal(got, want) {
		t.Errorf("calls end %v, want %v", got, want)
	}
}

func TestRollbackAllRevertsInReverseOrder(t *testing.T) {
	rec := newRecorder()
	rec.current = map[string]string{"api": "reg:5000/shop/api:old@sha256:a0", "worker": "reg:5000/shop/api:old@sha256:a0", "web": "reg:5000/shop/web:old@sha256:w0"}
	rec.failOn["update web reg:5000/shop/web"] = errors.New("rolled back by swarm")
	cfg := strings.Replace(shopConfig, "services: [{name: api", "on_failure: rollback_all\n        services: [{name: api", 1)
	j := runWith(t, rec, cfg, Request{Project: "shop", Ref: "refs/heads/main", Branch: "main", Commit: "c0ffee"})
	if j.Status != Failed {
		t.Fatalf("status %s", j.Status)
	}
	var updates []string
	for _, c := range rec.calls {
		if strings.HasPrefix(c, "update") {
			updates = append(updates, c)
		}
	}
	want := []string{
		"update api reg:5000/shop/api", "update worker reg:5000/shop/api", "update web reg:5000/shop/web",
		"update worker reg:5000/shop/api", "update api reg:5000/shop/api",
	}
	if diff := cmp.Diff(want, updates); diff != "" {
		t.Errorf("updates (-want +got):\n%s", diff)
	}
	if len(j.Reverted) != 2 || j.Reverted[0].Service != "worker" || j.Reverted[0].Image != "reg:5000/shop/api:old@sha256:a0" {
		t.Errorf("reverted = %+v", j.Reverted)
	}
}

func TestServiceActions(t *testing.T) {
	three := uint64(3)
	tests := []struct {
		name string
		req  Request
		want []string
	}{
		{"native rollback", Request{Action: ActionRollback, Service: "web"}, []string{"rollback web"}},
		{"rollback to tag", Request{Action: ActionRollback, Service: "web", Tag: "main-20261101000000"}, []string{"digest shop/web:main-20261101000000", "update web reg:5000/shop/web"}},
		{"rollback to tag by current repo", Request{Action: ActionRollback, Service: "worker", Tag: "main-20261101000000"}, []string{"digest shop/api:main-20261101000000", "update worker reg:5000/shop/api"}},
		{"redeploy", Request{Action: ActionRedeploy, Service: "api"}, []string{"redeploy api"}},
		{"scale", Request{Action: ActionScale, Service: "api", Replicas: &three}, []string{"scale api 3"}},
		{"deploy tag", Request{Action: ActionDeploy, Project: "shop", Branch: "main", Tag: "main-20261101000000"}, []string{
			"digest shop/api:main-20261101000000", "digest shop/web:main-20261101000000",
			"update api reg:5000/shop/api", "update worker reg:5000/shop/api", "update web reg:5000/shop/web",
			"retag shop/api main-latest", "retag shop/web main-latest"}},
		// main's services now run it: main-latest names it, and the
		// branch the tag came from keeps its own -latest.
		{"deploy another branch's tag", Request{Action: ActionDeploy, Project: "shop", Branch: "main", Tag: "feature-x-20261101000000"}, []string{
			"digest shop/api:feature-x-20261101000000", "digest shop/web:feature-x-20261101000000",
			"update api reg:5000/shop/api", "update worker reg:5000/shop/api", "update web reg:5000/shop/web",
			"retag shop/api main-latest", "retag shop/web main-latest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			rec.current["worker"] = "reg:5000/shop/api:x@sha256:old"
			j := runWith(t, rec, shopConfig, tt.req)
			if j.Status != Succeeded {
				t.Fatalf("status %s: %s", j.Status, j.Error)
			}
			if diff := cmp.Diff(tt.want, rec.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailedDeployOfATagMovesNoLatest(t *testing.T) {
	rec := newRecorder()
	rec.current["worker"] = "reg:5000/shop/api:x@sha256:old"
	rec.failOn["update web reg:5000/shop/web"] = errors.New("rolled back by swarm")
	j := runWith(t, rec, shopConfig, Request{Action: ActionDeploy, Project: "shop", Branch: "main", Tag: "main-20261101000000"})
	if j.Status != Failed {
		t.Fatalf("status %s", j.Status)
	}
	for _, c := range rec.calls {
		if strings.HasPrefix(c, "retag") {
			t.Errorf("%q after a failed deploy: %v", c, rec.calls)
		}
	}
}

func TestUnknownTagFailsBeforeAnyUpdate(t *testing.T) {
	rec := newRecorder()
	rec.failOn["digest shop/web:main-20200101000000"] = errors.New("registry: not found")
	j := runWith(t, rec, shopConfig, Request{Action: ActionDeploy, Project: "shop", Branch: "main", Tag: "main-20200101000000"})
	if j.Status != Failed {
		t.Fatalf("status %s", j.Status)
	}
	for _, c := range rec.calls {
		if strings.HasPrefix(c, "update") {
			t.Errorf("updated a service for a missing tag: %s", c)
		}
	}
}

func TestAJobsEndIsSavedOnceTheStoreTakesWritesAgain(t *testing.T) {
	rec := newRecorder()
	rec.current["worker"] = "reg:5000/shop/api:x@sha256:old"
	rec.failEnds = 4
	j := runOne(t, rec, "main") // in a bubble: the retries' waits take no time
	if n := rec.ends(); j.Status != Succeeded || n != 5 {
		t.Errorf("job %s (%s) after %d saves of its end, want succeeded after 5", j.Status, j.Error, n)
	}
}

func TestAJobsEndNotSavedByShutdownIsInterruptedAtTheNextStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		rec.failEnds = 1 << 30
		cfg, err := config.Load(strings.NewReader(fmt.Sprintf(shopConfig, t.TempDir())), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		d := Deps{Store: rec, Logs: discardLogs{}, Source: rec, Builder: rec, Registry: rec, Updater: rec, Log: zerolog.Nop()}
		r := NewRunner(cfg, d)
		r.Start(context.Background())
		j, err := r.Submit(context.Background(), Request{Project: "shop", Trigger: TriggerPush, Ref: "refs/heads/main", Branch: "main", Commit: "c0ffee"})
		if err != nil {
			t.Fatal(err)
		}
		// A minute of the bubble's clock: several tries by then.
		time.Sleep(time.Minute)
		if n := rec.ends(); n < 3 {
			t.Fatalf("the job's end was saved %d times in a minute, want tries again", n)
		}
		grace, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := r.Shutdown(grace); err == nil {
			t.Error("Shutdown with a job's end unsaved reported nothing")
		}
		if got := rec.job(j.ID).Status; got != Running {
			t.Fatalf("job %s in the store after shutdown, want running", got)
		}
		rec.mu.Lock()
		rec.failEnds = 0
		rec.mu.Unlock()
		next := NewRunner(cfg, d)
		if err := next.Resume(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := rec.job(j.ID).Status; got != Interrupted {
			t.Errorf("job %s after the next start, want interrupted", got)
		}
	})
}
