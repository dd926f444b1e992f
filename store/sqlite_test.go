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
		if err := s.Create(ctx, j, nil); err != nil {
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
	s2.Create(ctx, next, nil)
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
	if err := s.Create(ctx, j, &job.Delivery{Provider: "github", ID: "d1", Earlier: []int64{7}, At: at}); err != nil {
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
}

func jobIDs(js []*job.Job) []int64 {
	var ids []int64
	for _, j := range js {
		ids = append(ids, j.ID)
	}
	return ids
}

// Save writes a job with the deliveries that joined it while it waited,
// in one transaction: afterwards each names the job.
func TestSaveRemembersTheDeliveriesThatJoined(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	window := at.Add(-24 * time.Hour)
	waiting := &job.Job{Project: "shop", Branch: "main", Status: job.Queued, Commit: "c1", Pushes: 1, Created: at}
	d1 := &job.Delivery{Provider: "github", ID: "shop/d1", At: at}
	if err := s.Create(ctx, waiting, d1); err != nil {
		t.Fatal(err)
	}
	joined := waiting.Clone()
	joined.Status, joined.Commit, joined.Pushes = job.Running, "c3", 3
	d2 := &job.Delivery{Provider: "github", ID: "shop/d2", At: at.Add(time.Second)}
	d3 := &job.Delivery{Provider: "github", ID: "shop/d3", Earlier: []int64{7}, At: at.Add(2 * time.Second)}
	if err := s.Save(ctx, joined, d1, d2, d3); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, &job.Job{ID: 999}, &job.Delivery{Provider: "github", ID: "shop/lost", At: at}); !errors.Is(err, ErrNotFound) {
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

// TestADeliveryRecordedAgainNamesTheNewJob: a delivery id seen again
// after the redelivery window (the hook handler asks Delivery first)
// starts a job, and from then on names that job.
func TestADeliveryRecordedAgainNamesTheNewJob(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for i, when := range []time.Time{at, at.Add(25 * time.Hour)} {
		j := &job.Job{Project: "shop", Branch: "main", Status: job.Queued, Created: when}
		if err := s.Create(ctx, j, &job.Delivery{Provider: "github", ID: "shop/d1", At: when}); err != nil {
			t.Fatal(err)
		}
		jobs, seen, err := s.Delivery(ctx, "github", "shop/d1", when.Add(-24*time.Hour))
		if !seen || err != nil || !slices.Equal(jobs, []int64{j.ID}) {
			t.Errorf("delivery %d: %v %v %v, want job %d", i+1, jobs, seen, err, j.ID)
		}
	}
}
