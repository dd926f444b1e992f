package prune

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/registry"
	"github.com/swarmhook/swarmhook/tagpolicy"
	"github.com/swarmhook/swarmhook/updater"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fakeRegistry holds repo -> tag -> digest.
type fakeRegistry struct {
	mu      sync.Mutex
	repos   map[string]map[string]string
	deleted []string
	block   chan struct{} // when set, DeleteTag waits on it
}

func (f *fakeRegistry) Host() string { return "reg.test:5000" }
func (f *fakeRegistry) Tags(_ context.Context, repo string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tags, ok := f.repos[repo]
	if !ok {
		return nil, registry.ErrNotFound
	}
	var out []string
	for t := range tags {
		out = append(out, t)
	}
	return out, nil
}
func (f *fakeRegistry) Digest(_ context.Context, repo, tag string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.repos[repo][tag]
	if !ok {
		return "", registry.ErrNotFound
	}
	return d, nil
}
func (f *fakeRegistry) DeleteTag(_ context.Context, repo, tag, digest string, _ bool) error {
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.repos[repo][tag] != digest {
		return registry.ErrTagMoved
	}
	delete(f.repos[repo], tag)
	f.deleted = append(f.deleted, repo+":"+tag)
	return nil
}

type fakeSwarm struct {
	mu    sync.Mutex
	calls int
	// inUse[i] is answered on call i (the last one after that).
	inUse [][]updater.InUse
	err   error
}

func (f *fakeSwarm) InUse(context.Context) ([]updater.InUse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := min(f.calls, len(f.inUse)-1)
	f.calls++
	return f.inUse[i], f.err
}

type fakeStore struct {
	mu         sync.Mutex
	jobs       []*job.Job
	unfinished []*job.Job
}

func (f *fakeStore) Create(_ context.Context, j *job.Job, _ *job.Delivery) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	j.ID = int64(len(f.jobs) + 1)
	f.jobs = append(f.jobs, j.Clone())
	return nil
}
func (f *fakeStore) Save(_ context.Context, j *job.Job, _ ...*job.Delivery) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs[j.ID-1] = j.Clone()
	return nil
}
func (f *fakeStore) Unfinished(context.Context) ([]*job.Job, error) { return f.unfinished, nil }
func (f *fakeStore) Delivery(context.Context, string, string, time.Time) ([]int64, bool, error) {
	return nil, false, nil
}

type fakeLogs struct{ buf bytes.Buffer }

func (f *fakeLogs) Create(int64) (io.WriteCloser, error) { return nopCloser{&f.buf}, nil }

func tag(branch string, hoursAgo int) string {
	return tagpolicy.Timestamped(branch, now.Add(-time.Duration(hoursAgo)*time.Hour))
}

// world is a registry with shop/api holding 6 main and 4 dev tags, each
// its own digest "d-<tag>", plus main-latest on the newest main tag.
func world() (*fakeRegistry, *config.Config) {
	api := map[string]string{}
	for h := 1; h <= 6; h++ {
		api[tag("main", h)] = "d-" + tag("main", h)
	}
	for h := 1; h <= 4; h++ {
		api[tag("dev", h)] = "d-" + tag("dev", h)
	}
	api["main-latest"] = api[tag("main", 1)]
	reg := &fakeRegistry{repos: map[string]map[string]string{"shop/api": api}}
	cfg := &config.Config{
		Prune: config.Prune{Concurrency: 3},
		Projects: []config.Project{{
			Name:      "shop",
			Retention: []config.Retention{{KeepLast: 2}},
			Images:    []config.Image{{Name: "shop/api"}, {Name: "shop/never-pushed"}},
			Deploy:    []config.Deploy{{Services: []config.Service{{Name: "api", Image: "shop/api"}}}},
		}},
	}
	return reg, cfg
}

func newPruner(cfg *config.Config, reg *fakeRegistry, sw *fakeSwarm, st *fakeStore, logs *fakeLogs) *Pruner {
	cfg.Jobs.Timeout.Duration = time.Hour
	clock := func() time.Time { return now }
	runner := job.NewRunner(cfg, job.Deps{Store: st, Logs: logs, Log: zerolog.Nop(), Now: clock})
	return New(cfg, Deps{Registry: reg, Swarm: sw, Store: st, Jobs: runner, Log: zerolog.Nop(), Now: clock})
}

func TestRunProtectsWhatIsLive(t *testing.T) {
	reg, cfg := world()
	running := tag("main", 5)
	sw := &fakeSwarm{inUse: [][]updater.InUse{{
		{Service: "api", Image: "reg.test:5000/shop/api:" + running + "@d-" + running, Why: "runs"},
		{Service: "api", Image: "reg.test:5000/shop/api:" + tag("main", 6) + "@d-" + tag("main", 6), Why: "previous spec"},
	}}}
	st := &fakeStore{unfinished: []*job.Job{{ID: 9, Action: job.ActionDeploy, Status: job.Queued, Service: "api", Tag: tag("dev", 4)}}}
	logs := &fakeLogs{}
	rep, err := newPruner(cfg, reg, sw, st, logs).Run(context.Background(), job.TriggerManual, "ops")
	if err != nil {
		t.Fatal(err)
	}
	wantDeleted := []string{"shop/api:" + tag("dev", 3), "shop/api:" + tag("main", 3), "shop/api:" + tag("main", 4)}
	slices.Sort(reg.deleted)
	slices.Sort(wantDeleted)
	if !slices.Equal(reg.deleted, wantDeleted) {
		t.Errorf("deleted %v, want %v", reg.deleted, wantDeleted)
	}
	j := st.jobs[0]
	if j.Status != job.Succeeded || j.Action != job.ActionPrune || j.Trigger != job.TriggerManual || j.Who != "ops" || rep.Job != j.ID {
		t.Errorf("job = %+v", j)
	}
	want := []job.Pruned{{Repository: "shop/api", Tags: 11, Kept: 8, Deleted: 3}, {Repository: "shop/never-pushed"}}
	if !slices.Equal(j.Pruned, want) {
		t.Errorf("pruned = %+v, want %+v", j.Pruned, want)
	}
	for _, d := range wantDeleted {
		if !strings.Contains(logs.buf.String(), "deleted "+d) {
			t.Errorf("job log lacks %q:\n%s", d, logs.buf.String())
		}
	}
	reasons := map[string]string{}
	for _, k := range rep.Repositories[0].Keep {
		reasons[k.Tag] = k.Detail
	}
	if !strings.Contains(reasons[running], "service api: runs") || !strings.Contains(reasons[tag("dev", 4)], "job 9") {
		t.Errorf("keep reasons = %v", reasons)
	}
}

func TestRunRechecksProtectionsBeforeDeleting(t *testing.T) {
	reg, cfg := world()
	late := tag("main", 4)
	sw := &fakeSwarm{inUse: [][]updater.InUse{
		{}, // while listing: nothing runs
		{{Service: "api", Image: "reg.test:5000/shop/api:" + late + "@d-" + late, Why: "runs"}},
	}}
	if _, err := newPruner(cfg, reg, sw, &fakeStore{}, &fakeLogs{}).Run(context.Background(), job.TriggerSchedule, ""); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(reg.deleted, "shop/api:"+late) {
		t.Errorf("deleted %s, deployed while the prune listed", late)
	}
	if len(reg.deleted) != 5 {
		t.Errorf("deleted %v, want the 5 others beyond keep_last", reg.deleted)
	}
}

func TestRunRefusesBlindDeletes(t *testing.T) {
	reg, cfg := world()
	st := &fakeStore{}
	_, err := newPruner(cfg, reg, &fakeSwarm{inUse: [][]updater.InUse{nil}, err: errors.New("engine down")}, st, &fakeLogs{}).
		Run(context.Background(), job.TriggerSchedule, "")
	if err == nil || len(reg.deleted) != 0 {
		t.Fatalf("err = %v, deleted %v: a prune must not delete without knowing what runs", err, reg.deleted)
	}
	if st.jobs[0].Status != job.Failed {
		t.Errorf("job status = %s", st.jobs[0].Status)
	}
}

func TestRunsNeverOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg, cfg := world()
		reg.block = make(chan struct{})
		p := newPruner(cfg, reg, &fakeSwarm{inUse: [][]updater.InUse{nil}}, &fakeStore{}, &fakeLogs{})
		done := make(chan error)
		go func() {
			_, err := p.Run(context.Background(), job.TriggerSchedule, "")
			done <- err
		}()
		synctest.Wait() // the first run is deleting, held by reg.block
		if _, err := p.Run(context.Background(), job.TriggerManual, ""); !errors.Is(err, ErrRunning) {
			t.Errorf("second run: %v, want ErrRunning", err)
		}
		// A dry run may look while a run deletes.
		if _, err := p.Plan(context.Background()); err != nil {
			t.Errorf("plan during a run: %v", err)
		}
		close(reg.block)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if len(reg.deleted) == 0 {
			t.Error("the first run deleted nothing: it was never held deleting")
		}
	})
}

func TestPlanDeletesNothing(t *testing.T) {
	reg, cfg := world()
	st := &fakeStore{}
	rep, err := newPruner(cfg, reg, &fakeSwarm{inUse: [][]updater.InUse{nil}}, st, &fakeLogs{}).Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.deleted) != 0 || len(st.jobs) != 0 || !rep.DryRun {
		t.Errorf("dry run deleted %v, recorded %d jobs", reg.deleted, len(st.jobs))
	}
	if got := len(rep.Repositories[0].Delete); got != 6 {
		t.Errorf("plan deletes %d tags, want 6 (4 main + 2 dev beyond keep_last 2)", got)
	}
	for _, d := range rep.Repositories[0].Delete {
		if !d.Exclusive {
			t.Errorf("%s not exclusive", d.Tag)
		}
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
