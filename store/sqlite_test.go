package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/updater"
)

func openTemp(t *testing.T) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "swarmhook.db")
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestJobsRoundTripAndNumbers(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	var ids []int64
	for i, p := range []string{"shop", "shop", "blog", "shop"} {
		j := &job.Job{Project: p, Branch: "main", Status: job.Queued, Created: now.Add(time.Duration(i) * time.Second)}
		if err := s.Create(ctx, j, job.With{}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
		want := map[int]int64{0: 1, 1: 2, 2: 1, 3: 3}[i]
		if j.Number != want {
			t.Errorf("job %d of %s got number %d, want %d", i, p, j.Number, want)
		}
	}
	j, err := s.Get(ctx, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	j.Status, j.Finished = job.Succeeded, now.Add(time.Minute)
	j.Services = []updater.Result{{Service: "api", Outcome: updater.Updated}}
	if err := s.Save(ctx, j); err != nil {
		t.Fatal(err)
	}

	// Reopen: everything survives a restart.
	s.Close()
	s2, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.Get(ctx, ids[1])
	if err != nil || got.Status != job.Succeeded || got.Services[0].Service != "api" {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	byService, _ := s2.List(ctx, Filter{Service: "api"})
	if len(byService) != 1 || byService[0].ID != ids[1] {
		t.Errorf("filter by service: %+v", byService)
	}
	shop, _ := s2.List(ctx, Filter{Project: "shop", Limit: 2})
	if len(shop) != 2 || shop[0].ID != ids[3] || shop[1].ID != ids[1] {
		t.Errorf("newest shop jobs: %v", jobIDs(shop))
	}
	older, _ := s2.List(ctx, Filter{Project: "shop", Before: ids[1]})
	if len(older) != 1 || older[0].ID != ids[0] {
		t.Errorf("page before %d: %v", ids[1], jobIDs(older))
	}
	unfinished, _ := s2.Unfinished(ctx)
	if len(unfinished) != 3 {
		t.Errorf("unfinished = %v", jobIDs(unfinished))
	}

	// Trimming never makes a build number come back.
	trimmed, err := s2.Trim(ctx, now.Add(time.Hour))
	if err != nil || len(trimmed) != 1 || trimmed[0] != ids[1] {
		t.Fatalf("trim = %v, %v", trimmed, err)
	}
	if _, err := s2.Get(ctx, ids[1]); !errors.Is(err, ErrNotFound) {
		t.Errorf("trimmed job still there: %v", err)
	}
	next := &job.Job{Project: "shop", Status: job.Queued, Created: now}
	s2.Create(ctx, next, job.With{})
	if next.Number != 4 {
		t.Errorf("number after trim = %d, want 4", next.Number)
	}
}

func TestSaveUnknownJob(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.Save(context.Background(), &job.Job{ID: 42}); !errors.Is(err, ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
}

func TestDeliveries(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if _, ok, err := s.Delivery(ctx, "github", "d1", at.Add(-time.Hour)); ok || err != nil {
		t.Fatalf("unknown delivery found: %v %v", ok, err)
	}
	j := &job.Job{Project: "shop", Branch: "main", Status: job.Queued, Created: at}
	if err := s.Create(ctx, j, job.With{Delivery: &job.Delivery{Provider: "github", ID: "d1", Earlier: []int64{7}, At: at}}); err != nil {
		t.Fatal(err)
	}
	jobs, ok, err := s.Delivery(ctx, "github", "d1", at.Add(-24*time.Hour))
	if !ok || err != nil || len(jobs) != 2 || jobs[0] != 7 || jobs[1] != j.ID {
		t.Errorf("Delivery = %v %v %v", jobs, ok, err)
	}
	if _, ok, _ := s.Delivery(ctx, "gitlab", "d1", at.Add(-24*time.Hour)); ok {
		t.Error("delivery ids are per provider")
	}
	if _, ok, _ := s.Delivery(ctx, "github", "d1", at.Add(time.Second)); ok {
		t.Error("a delivery older than the window counts as new")
	}
}

// TestMigrationKeepsDeliveries opens a database written by the first
// schema, whose deliveries table had a rowid: the move to a table keyed
// by (provider, id) alone must keep every delivery, so a redelivery that
// arrives across the upgrade still builds nothing.
func TestMigrationKeepsDeliveries(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "swarmhook.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, q := range []string{
		migrations[0],
		"PRAGMA user_version = 1",
		fmt.Sprintf("INSERT INTO deliveries (provider, id, jobs, received) VALUES ('github', 'd1', '[3,4]', %d), ('gitea', 'd1', '[5]', %d)",
			at.UnixMilli(), at.UnixMilli()),
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	old.Close()

	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		provider string
		want     []int64
	}{{"github", []int64{3, 4}}, {"gitea", []int64{5}}} {
		got, ok, err := s.Delivery(ctx, tc.provider, "d1", at.Add(-time.Hour))
		if !ok || err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s/d1 after the upgrade = %v %v %v, want %v", tc.provider, got, ok, err, tc.want)
		}
	}
	j := &job.Job{Project: "shop", Branch: "main", Status: job.Queued, Created: at}
	err = s.Create(ctx, j, job.With{Delivery: &job.Delivery{Provider: "github", ID: "d1", At: at.Add(time.Minute), Since: at.Add(-time.Hour)}})
	var re *job.RedeliveryError
	if !errors.As(err, &re) || !slices.Equal(re.Jobs, []int64{3, 4}) {
		t.Errorf("redelivery across the upgrade: %v, want the jobs it started before", err)
	}
}

func jobIDs(js []*job.Job) []int64 {
	var ids []int64
	for _, j := range js {
		ids = append(ids, j.ID)
	}
	return ids
}

// Save writes a job with the deliveries that joined it while it waited,
// in one transaction: afterwards each is a redelivery of the job, and one
// remembered already within its window is left as it was.
func TestSaveRemembersTheDeliveriesThatJoined(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	window := at.Add(-24 * time.Hour)
	waiting := &job.Job{Project: "shop", Branch: "main", Status: job.Queued, Commit: "c1", Pushes: 1, Created: at}
	d1 := &job.Delivery{Provider: "github", ID: "shop/d1", At: at, Since: window}
	if err := s.Create(ctx, waiting, job.With{Delivery: d1}); err != nil {
		t.Fatal(err)
	}
	joined := waiting.Clone()
	joined.Status, joined.Commit, joined.Pushes = job.Running, "c3", 3
	d2 := &job.Delivery{Provider: "github", ID: "shop/d2", At: at.Add(time.Second), Since: window}
	d3 := &job.Delivery{Provider: "github", ID: "shop/d3", Earlier: []int64{7}, At: at.Add(2 * time.Second), Since: window}
	if err := s.Save(ctx, joined, d1, d2, d3); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, &job.Job{ID: 999}, &job.Delivery{Provider: "github", ID: "shop/lost", At: at, Since: window}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Save of an unknown job: %v, want ErrNotFound", err)
	}

	s.Close()
	s2, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.Get(ctx, waiting.ID)
	if err != nil || got.Status != job.Running || got.Commit != "c3" || got.Pushes != 3 || got.Number != waiting.Number {
		t.Errorf("job after reopen: %+v %v, want running at c3 with 3 pushes", got, err)
	}
	for _, tc := range []struct {
		id   string
		want []int64
	}{{"shop/d1", []int64{waiting.ID}}, {"shop/d2", []int64{waiting.ID}}, {"shop/d3", []int64{7, waiting.ID}}} {
		if jobs, seen, err := s2.Delivery(ctx, "github", tc.id, window); !seen || err != nil || !slices.Equal(jobs, tc.want) {
			t.Errorf("delivery %s after reopen: %v %v %v, want %v", tc.id, jobs, seen, err, tc.want)
		}
	}
	if _, seen, _ := s2.Delivery(ctx, "github", "shop/lost", window); seen {
		t.Error("the delivery of a failed Save was remembered")
	}
}

func TestCreateOfARedeliveryWritesNothing(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	d := job.Delivery{Provider: "github", ID: "shop/d1", At: at, Since: at.Add(-24 * time.Hour)}
	first := &job.Job{Project: "shop", Branch: "main", Status: job.Queued, Created: at}
	if err := s.Create(ctx, first, job.With{Delivery: &d}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		since time.Time
		again bool
	}{
		{name: "within the window", since: at.Add(-time.Hour), again: true},
		{name: "after the window", since: at.Add(time.Second), again: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			retry := d
			retry.At, retry.Since = tt.since.Add(time.Hour), tt.since
			j := &job.Job{Project: "shop", Branch: "main", Status: job.Queued, Created: retry.At}
			err := s.Create(ctx, j, job.With{Delivery: &retry})
			var again *job.RedeliveryError
			switch {
			case tt.again && (!errors.As(err, &again) || len(again.Jobs) != 1 || again.Jobs[0] != first.ID):
				t.Errorf("Create = %v, want a redelivery of job %d", err, first.ID)
			case tt.again && j.ID != 0:
				t.Errorf("a redelivery got job %d", j.ID)
			case !tt.again && (err != nil || j.ID == 0):
				t.Errorf("Create = %v, job %d; want a new job", err, j.ID)
			}
		})
	}
	if all, _ := s.List(ctx, Filter{}); len(all) != 2 {
		t.Errorf("%d jobs stored, want 2 (the first, and the one after the window)", len(all))
	}
}
