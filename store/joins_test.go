package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/job"
)

// openSlowFold opens a store whose join log is folded only by other
// writes and Close, so a test sees pushes while they wait in it.
func openSlowFold(t *testing.T, path string) *SQLite {
	t.Helper()
	s, err := openSQLite(context.Background(), path, tuning{ckptEvery: checkpointEvery, restartFrames: restartFrames, foldEvery: time.Hour}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openWithWaitingBuild opens a store as openSlowFold does, with one
// queued build of shop's main at c1.
func openWithWaitingBuild(t *testing.T) (*SQLite, string, *job.Job) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "swarmhook.db")
	s := openSlowFold(t, path)
	return s, path, createWaiting(t, s)
}

// createWaiting creates a queued build of shop's main at c1.
func createWaiting(t *testing.T, s *SQLite) *job.Job {
	t.Helper()
	waiting := &job.Job{Project: "shop", Branch: "main", Status: job.Queued, Commit: "c1", Pushes: 1, Created: time.Now().UTC().Truncate(time.Millisecond)}
	if err := s.Create(context.Background(), waiting, job.With{}); err != nil {
		t.Fatal(err)
	}
	return waiting
}

// joinPush joins a push of commit to waiting, as its pushes-th, delivered
// from GitHub as id when the build was created, within a day's window.
func joinPush(t *testing.T, s *SQLite, waiting *job.Job, commit string, pushes int, id string) {
	t.Helper()
	j := waiting.Clone()
	j.Commit, j.Pushes = commit, pushes
	at := waiting.Created
	if err := s.Join(context.Background(), j, &job.Delivery{Provider: "github", ID: id, At: at, Since: at.Add(-24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

func TestJoinRecordsRoundTrip(t *testing.T) {
	recs := []*joined{
		{seq: 1, job: 7, data: []byte(`{"id":7,"commit":"c2"}`), provider: "github", id: "shop/d1", jobs: []int64{3, 7}, at: 1_790_000_000_000},
		{seq: 2, job: 1 << 40, data: []byte(`{}`)},
		{seq: 1 << 50, job: 9, data: []byte(`{"id":9}`), provider: "gitlab", id: "x", jobs: []int64{9}, at: -5},
	}
	var log []byte
	for _, r := range recs {
		log = encodeJoin(log, r)
	}
	if got, bad := decodeJoins(log); !reflect.DeepEqual(got, recs) || len(bad) > 0 {
		t.Fatalf("decoded %+v, damage %+v, want %+v", got, bad, recs)
	}
	first := len(encodeJoin(nil, recs[0]))
	whole := first + len(encodeJoin(nil, recs[1]))
	flipped := bytes.Clone(log)
	flipped[whole+12] ^= 1
	middle := bytes.Clone(log)
	middle[first+2] ^= 0x80 // the length: no telling where the record ends
	for _, tc := range []struct {
		name string
		log  []byte
		want []*joined
		bad  []damaged
	}{
		{"cut in the last record's payload", log[:len(log)-3], recs[:2], nil},
		{"cut in the last record's header", log[:whole+5], recs[:2], nil},
		{"last record damaged", flipped, recs[:2], []damaged{{off: whole, n: len(log) - whole, prev: 2}}},
		{"length of a middle record damaged", middle, []*joined{recs[0], recs[2]}, []damaged{{off: first, n: whole - first, prev: 1, next: 1 << 50}}},
		{"empty", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, bad := decodeJoins(tc.log)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("decoded %d records %+v, want %+v", len(got), got, tc.want)
			}
			var gotBad []damaged
			for _, d := range bad {
				gotBad = append(gotBad, *d)
			}
			if !reflect.DeepEqual(gotBad, tc.bad) {
				t.Errorf("damage %+v, want %+v", gotBad, tc.bad)
			}
		})
	}
}

func TestJoinAppendRetriesAfterAFold(t *testing.T) {
	l, err := openJoinLog(filepath.Join(t.TempDir(), "db-joins"), 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	since := time.UnixMilli(0)
	first := &joined{job: 1, data: []byte(`{}`), provider: "github", id: "d1", jobs: []int64{1}, at: 10}
	_, commits := l.delivery("github", "d1", since)
	if _, err := l.append(first, since, commits); err != nil {
		t.Fatal(err)
	}
	// The same delivery while the first waits: its jobs, nothing appended.
	again := &joined{job: 1, data: []byte(`{}`), provider: "github", id: "d1", jobs: []int64{1}, at: 11}
	if seen, err := l.append(again, since, commits); err != nil || !reflect.DeepEqual(seen, []int64{1}) {
		t.Errorf("append of a waiting delivery: %v %v, want its jobs [1]", seen, err)
	}
	// A fold commits after a caller looked the delivery up in the
	// database: what it read may miss the fold, so it must look again.
	_, commits = l.delivery("github", "d2", since)
	l.take(0)
	l.committed()
	d2 := &joined{job: 1, data: []byte(`{}`), provider: "github", id: "d2", jobs: []int64{1}, at: 12}
	if _, err := l.append(d2, since, commits); !errors.Is(err, errFolded) {
		t.Errorf("append after a fold the caller did not see: %v, want errFolded", err)
	}
	if l.pending() {
		t.Error("pushes still wait after their fold committed")
	}
	l.close()
	if _, err := l.append(d2, since, l.commits); !errors.Is(err, errJoinLogClosed) {
		t.Errorf("append after close: %v, want errJoinLogClosed", err)
	}
}

func TestJoinedPushesAreReadBeforeTheyAreFolded(t *testing.T) {
	ctx := context.Background()
	s, _, waiting := openWithWaitingBuild(t)
	at := waiting.Created
	window := at.Add(-24 * time.Hour)
	joined := waiting.Clone()
	joined.Commit, joined.Pushes = "c2", 2
	if err := s.Join(ctx, joined, &job.Delivery{Provider: "github", ID: "shop/d2", At: at, Since: window}); err != nil {
		t.Fatal(err)
	}
	if !s.joins.pending() {
		t.Fatal("the push was folded at once; this test needs it waiting")
	}
	if got, err := s.Get(ctx, waiting.ID); err != nil || got.Commit != "c2" || got.Pushes != 2 {
		t.Errorf("Get of a joined build: %+v %v, want c2 with 2 pushes", got, err)
	}
	if list, err := s.List(ctx, Filter{Project: "shop"}); err != nil || len(list) != 1 || list[0].Commit != "c2" {
		t.Errorf("List with a joined build: %+v %v, want it at c2", list, err)
	}
	if jobs, seen, err := s.Delivery(ctx, "github", "shop/d2", window); !seen || err != nil || !reflect.DeepEqual(jobs, []int64{waiting.ID}) {
		t.Errorf("Delivery of a waiting push: %v %v %v, want [%d]", jobs, seen, err, waiting.ID)
	}

	// Any write folds what waits first, so it sees it: starting the
	// build saves it whole, and nothing left in the log overwrites that.
	started := joined.Clone()
	started.Status = job.Running
	if err := s.Save(ctx, started); err != nil {
		t.Fatal(err)
	}
	if s.joins.pending() {
		t.Error("a push still waits after the next write")
	}
	if got, err := s.Get(ctx, waiting.ID); err != nil || got.Status != job.Running || got.Commit != "c2" {
		t.Errorf("started build: %+v %v, want running at c2", got, err)
	}
	var n int
	if err := s.read.QueryRow("SELECT COUNT(*) FROM deliveries WHERE id = 'shop/d2'").Scan(&n); err != nil || n != 1 {
		t.Errorf("folded delivery rows: %d %v, want 1", n, err)
	}
	late := started.Clone()
	late.Commit, late.Pushes = "c3", 3
	if err := s.Join(ctx, late, &job.Delivery{Provider: "github", ID: "shop/d3", At: at, Since: window}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Join into a build that started: %v, want ErrNotFound", err)
	}
}

// copyStore copies the store's files as a process killed now would leave
// them, to dst; then appends tail to the newest join log file.
func copyStore(t *testing.T, src, dst string, tail []byte) {
	t.Helper()
	names, err := filepath.Glob(src + "*")
	if err != nil {
		t.Fatal(err)
	}
	var newest string
	for _, name := range names {
		if strings.HasSuffix(name, "-shm") {
			continue // shared memory, rebuilt from the WAL at open
		}
		in, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		to := dst + name[len(src):]
		out, err := os.Create(to)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		out.Close()
		if strings.Contains(to, "-joins.") && to > newest {
			newest = to
		}
	}
	if newest == "" {
		t.Fatal("no join log to copy")
	}
	f, err := os.OpenFile(newest, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(tail); err != nil {
		t.Fatal(err)
	}
}

func TestJoinedPushesSurviveAKill(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "swarmhook.db")
	s := openSlowFold(t, path)
	at := time.Now().UTC().Truncate(time.Millisecond)
	window := at.Add(-24 * time.Hour)
	waiting := &job.Job{Project: "shop", Branch: "main", Status: job.Queued, Commit: "c1", Pushes: 1, Created: at}
	if err := s.Create(ctx, waiting, job.With{Delivery: &job.Delivery{Provider: "github", ID: "shop/d1", At: at, Since: window}}); err != nil {
		t.Fatal(err)
	}
	for i, commit := range []string{"c2", "c3"} {
		joinPush(t, s, waiting, commit, i+2, "shop/"+commit)
	}
	// Killed while writing a fourth push: its record is cut short, and
	// its delivery was never answered.
	cut := encodeJoin(nil, &joined{job: waiting.ID, data: []byte(`{"commit":"c4"}`), provider: "github", id: "shop/c4", jobs: []int64{waiting.ID}, at: at.UnixMilli()})
	copyPath := filepath.Join(t.TempDir(), "swarmhook.db")
	copyStore(t, path, copyPath, cut[:len(cut)-4])

	s2, err := OpenSQLite(ctx, copyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.joins.pending() {
		t.Error("pushes a killed process left still wait after open")
	}
	if left, _ := filepath.Glob(copyPath + "-joins.*"); len(left) != 1 {
		t.Errorf("join log files after open: %v, want only the new one", left)
	}
	got, err := s2.Get(ctx, waiting.ID)
	if err != nil || got.Commit != "c3" || got.Pushes != 3 || got.Status != job.Queued {
		t.Errorf("joined build after a kill: %+v %v, want queued at c3 with 3 pushes", got, err)
	}
	for _, id := range []string{"shop/d1", "shop/c2", "shop/c3"} {
		if _, seen, err := s2.Delivery(ctx, "github", id, window); !seen || err != nil {
			t.Errorf("delivery %s after a kill: seen %v %v, want seen", id, seen, err)
		}
	}
	if _, seen, err := s2.Delivery(ctx, "github", "shop/c4", window); seen || err != nil {
		t.Errorf("delivery cut short by the kill: seen %v %v, want unseen", seen, err)
	}
	// Redeliveries after the restart are still caught, by a read now.
	j := got.Clone()
	j.Commit, j.Pushes = "c9", 4
	var again *job.RedeliveryError
	if err := s2.Join(ctx, j, &job.Delivery{Provider: "github", ID: "shop/c2", At: at.Add(time.Minute), Since: window}); !errors.As(err, &again) || !reflect.DeepEqual(again.Jobs, []int64{waiting.ID}) {
		t.Errorf("redelivery after a restart: %v, want a RedeliveryError naming job %d", err, waiting.ID)
	}
}

func TestEmptyJoinLogsAreRemovedAtOpen(t *testing.T) {
	base := filepath.Join(t.TempDir(), "db-joins")
	// Left by processes killed before they joined anything, or while
	// writing their first record.
	cut := encodeJoin(nil, &joined{job: 1, data: []byte(`{}`)})
	for name, content := range map[string][]byte{base + ".1": nil, base + ".2": cut[:5]} {
		if err := os.WriteFile(name, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := openJoinLog(base, 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	if l.pending() {
		t.Error("records read from logs that hold none")
	}
	if left, _ := filepath.Glob(base + ".*"); len(left) != 1 || left[0] != base+".3" {
		t.Errorf("join log files after open: %v, want only %s.3, the new one", left, base)
	}
}

func TestAFoldedJoinLogLeftBehindChangesNothing(t *testing.T) {
	ctx := context.Background()
	s, path, waiting := openWithWaitingBuild(t)
	// Every fold moves appends on to a new file, so the one it folded
	// is deleted (and can come back, below).
	s.joins.mu.Lock()
	s.joins.rotateAt = 1
	s.joins.mu.Unlock()
	fold := func() {
		t.Helper()
		if err := s.foldAll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	joinPush(t, s, waiting, "c2", 2, "shop/c2")
	files, _ := filepath.Glob(path + "-joins.*")
	saved := map[string][]byte{}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		saved[name] = data
	}
	fold()
	for name := range saved {
		if _, err := os.Stat(name); !os.IsNotExist(err) {
			t.Fatalf("%s still there after its fold: %v", name, err)
		}
	}
	// The fold's files could not be deleted, say: they come back.
	for name, data := range saved {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	joinPush(t, s, waiting, "c3", 3, "shop/c3")
	fold()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openSlowFold(t, path)
	if got, err := s2.Get(ctx, waiting.ID); err != nil || got.Commit != "c3" || got.Pushes != 3 {
		t.Errorf("build after reopening beside a folded log: %+v %v, want c3 with 3 pushes, not the older c2", got, err)
	}
	if s2.joins.pending() {
		t.Error("records folded before were read again")
	}
	if left, _ := filepath.Glob(path + "-joins.*"); len(left) != 1 {
		t.Errorf("join log files after open: %v, want only the new one", left)
	}
}

func TestTheFolderFoldsAPartAtATime(t *testing.T) {
	ctx := context.Background()
	s, path, waiting := openWithWaitingBuild(t)
	window := waiting.Created.Add(-24 * time.Hour)
	const n = foldMax + 10
	for i := range n {
		joinPush(t, s, waiting, fmt.Sprintf("c%d", i+2), i+2, fmt.Sprintf("shop/d%d", i))
	}
	inDB := func() (deliveries int, folded uint64, data string) {
		t.Helper()
		if err := s.read.QueryRow("SELECT COUNT(*) FROM deliveries").Scan(&deliveries); err != nil {
			t.Fatal(err)
		}
		if err := s.read.QueryRow("SELECT folded FROM join_log").Scan(&folded); err != nil {
			t.Fatal(err)
		}
		if err := s.read.QueryRow("SELECT data FROM jobs WHERE id = ?", waiting.ID).Scan(&data); err != nil {
			t.Fatal(err)
		}
		return
	}

	// The folder's own transaction folds the oldest foldMax.
	if err := s.w.step(ctx); err != nil {
		t.Fatal(err)
	}
	if left := s.joins.backlog(); left != n-foldMax {
		t.Errorf("%d pushes wait after one step, want %d", left, n-foldMax)
	}
	deliveries, folded, data := inDB()
	if deliveries != foldMax || folded != foldMax || !strings.Contains(data, fmt.Sprintf(`"commit":"c%d"`, foldMax+1)) {
		t.Errorf("database after one step: %d deliveries, folded up to %d, job %s; want %d, %d, at c%d", deliveries, folded, data, foldMax, foldMax, foldMax+1)
	}
	// Reads still see the newest, from the log.
	if got, err := s.Get(ctx, waiting.ID); err != nil || got.Commit != fmt.Sprintf("c%d", n+1) {
		t.Errorf("Get while part waits: %+v %v, want c%d", got, err, n+1)
	}
	for _, id := range []string{"shop/d0", fmt.Sprintf("shop/d%d", n-1)} {
		if _, seen, err := s.Delivery(ctx, "github", id, window); !seen || err != nil {
			t.Errorf("delivery %s after a partial fold: seen %v %v, want seen", id, seen, err)
		}
	}
	// Killed now, the next process folds only what the database lacks.
	copyPath := filepath.Join(t.TempDir(), "swarmhook.db")
	copyStore(t, path, copyPath, nil)
	l, err := openJoinLog(copyPath+"-joins", folded, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if left := l.backlog(); left != n-foldMax {
		t.Errorf("a restart after a partial fold reads %d pushes to fold, want %d", left, n-foldMax)
	}
	l.close()

	// Any other write folds all that waits first.
	if err := s.foldAll(ctx); err != nil {
		t.Fatal(err)
	}
	if left := s.joins.backlog(); left != 0 {
		t.Errorf("%d pushes wait after a write, want none", left)
	}
	if deliveries, folded, data := inDB(); deliveries != n || folded != n || !strings.Contains(data, fmt.Sprintf(`"commit":"c%d"`, n+1)) {
		t.Errorf("database after a write: %d deliveries, folded up to %d, job %s; want %d, %d, at c%d", deliveries, folded, data, n, n, n+1)
	}
}

func TestJoinLogFilesGoOnceFolded(t *testing.T) {
	base := filepath.Join(t.TempDir(), "db-joins")
	l, err := openJoinLog(base, 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	l.rotateAt = 1 // a new file at every take after an append
	since := time.UnixMilli(0)
	appendJoin := func(id string) {
		t.Helper()
		_, commits := l.delivery("github", id, since)
		if _, err := l.append(&joined{job: 1, data: []byte(`{}`), provider: "github", id: id, jobs: []int64{1}, at: 1}, since, commits); err != nil {
			t.Fatal(err)
		}
	}
	files := func() []string {
		t.Helper()
		names, err := filepath.Glob(base + ".*")
		if err != nil {
			t.Fatal(err)
		}
		for i, name := range names {
			names[i] = strings.TrimPrefix(name, base)
		}
		return names
	}

	appendJoin("d1")
	appendJoin("d2")
	l.take(1) // .1 holds 1 and 2; appends move on to .2
	l.committed()
	if got := files(); !reflect.DeepEqual(got, []string{".1", ".2"}) {
		t.Errorf("files after folding part of .1: %v, want .1 kept", got)
	}
	appendJoin("d3")
	l.take(0) // .2 holds 3; appends move on to .3
	if got := files(); !reflect.DeepEqual(got, []string{".1", ".2", ".3"}) {
		t.Errorf("files before the fold commits: %v, want all three", got)
	}
	l.committed()
	if got := files(); !reflect.DeepEqual(got, []string{".3"}) {
		t.Errorf("files after folding everything: %v, want only .3, the one appended to", got)
	}
	if _, commits := l.delivery("github", "d2", since); commits != 2 {
		t.Errorf("%d folds counted, want 2", commits)
	}
}

func TestTheFolderFoldsOnItsOwn(t *testing.T) {
	for _, tc := range []struct {
		name      string
		foldEvery time.Duration
		rounds    []int // pushes joined, then waited for, each round
	}{
		{"soon after a push, also after sleeping", 5 * time.Millisecond, []int{1, 1}},
		{"at once when foldAt wait", time.Hour, []int{foldAt}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "swarmhook.db")
			s, err := openSQLite(ctx, path, tuning{ckptEvery: checkpointEvery, restartFrames: restartFrames, foldEvery: tc.foldEvery}, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			waiting := createWaiting(t, s)
			pushes := 0
			for round, n := range tc.rounds {
				if round > 0 {
					// Time for the folder to go back to sleep: the next
					// push must wake it.
					time.Sleep(50 * time.Millisecond)
				}
				for range n {
					pushes++
					joinPush(t, s, waiting, fmt.Sprintf("c%d", pushes+1), pushes+1, fmt.Sprintf("shop/d%d", pushes))
				}
				deadline := time.Now().Add(10 * time.Second)
				var folded int
				for (folded < pushes || s.joins.pending()) && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
					if err := s.read.QueryRow("SELECT folded FROM join_log").Scan(&folded); err != nil {
						t.Fatal(err)
					}
				}
				if folded != pushes || s.joins.pending() {
					t.Fatalf("round %d: %d of %d pushes folded after 10 s, with no other write", round+1, folded, pushes)
				}
			}
		})
	}
}

func TestJoinLogGivesMemoryBackAfterABurst(t *testing.T) {
	l, err := openJoinLog(filepath.Join(t.TempDir(), "db-joins"), 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	since := time.UnixMilli(0)
	for i := range 4*foldAt + 1 {
		id := fmt.Sprintf("d%d", i)
		_, commits := l.delivery("github", id, since)
		if _, err := l.append(&joined{job: int64(i), data: []byte(`{}`), provider: "github", id: id, at: 1}, since, commits); err != nil {
			t.Fatal(err)
		}
	}
	l.take(0)
	l.committed()
	if c := cap(l.waits); c != 0 {
		t.Errorf("the folded burst's queue keeps room for %d records", c)
	}
	// A map keeps its buckets once emptied; a fresh one has none to keep,
	// and takes new records as before.
	if len(l.byDel)+len(l.byJob) != 0 || l.pending() {
		t.Error("folded records still indexed")
	}
	_, commits := l.delivery("github", "after", since)
	if _, err := l.append(&joined{job: 1, data: []byte(`{}`), provider: "github", id: "after", jobs: []int64{1}, at: 1}, since, commits); err != nil {
		t.Fatal(err)
	}
	if jobs, _ := l.delivery("github", "after", since); !reflect.DeepEqual(jobs, []int64{1}) {
		t.Errorf("delivery appended after the burst: %v, want [1]", jobs)
	}
}

func TestADamagedJoinLogRecordIsReportedAndTheFileKept(t *testing.T) {
	ctx := context.Background()
	s, path, waiting := openWithWaitingBuild(t)
	at := waiting.Created
	window := at.Add(-24 * time.Hour)
	const pushes = 60
	for i := range pushes {
		joinPush(t, s, waiting, fmt.Sprintf("c%d", i+2), i+2, fmt.Sprintf("shop/p%d", i))
	}
	copyPath := filepath.Join(t.TempDir(), "swarmhook.db")
	copyStore(t, path, copyPath, nil)
	logs, _ := filepath.Glob(copyPath + "-joins.*")
	var file string
	var data []byte
	for _, name := range logs {
		if b, _ := os.ReadFile(name); len(b) > len(data) {
			file, data = name, b
		}
	}
	// One flipped byte in the payload of the tenth record.
	off := 0
	for range 9 {
		_, n := decodeAt(data[off:])
		off += n
	}
	_, n := decodeAt(data[off:])
	data[off+n-3] ^= 0x20
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	s2, err := OpenSQLite(ctx, copyPath, WithLog(zerolog.New(&out)))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	type report struct {
		Level       string `json:"level"`
		File        string `json:"file"`
		Offset      int    `json:"offset"`
		RecordsLost int    `json:"records_lost"`
		KeptAs      string `json:"kept_as"`
	}
	var rep report
	for dec := json.NewDecoder(bytes.NewReader(out.Bytes())); dec.More(); {
		var line report
		if err := dec.Decode(&line); err != nil {
			t.Fatal(err)
		}
		if line.File != "" {
			rep = line
		}
	}
	if rep.Level != "error" || rep.File != file || rep.Offset != off || rep.RecordsLost != 1 {
		t.Errorf("report %+v, want an error naming %s at offset %d with 1 record lost; log:\n%s", rep, file, off, out.String())
	}
	if _, err := os.Stat(rep.KeptAs); err != nil || !strings.HasPrefix(rep.KeptAs, file+".damaged-") {
		t.Errorf("damaged file kept as %q: %v", rep.KeptAs, err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("damaged file still where the next open reads it: %v", err)
	}
	// Only the damaged record's push is lost: the pushes after it are
	// folded, the build stands at the last.
	got, err := s2.Get(ctx, waiting.ID)
	if err != nil || got.Commit != fmt.Sprintf("c%d", pushes+1) {
		t.Errorf("joined build after the damage: %+v %v, want it at c%d", got, err, pushes+1)
	}
	var lost []string
	for i := range pushes {
		id := fmt.Sprintf("shop/p%d", i)
		if _, seen, _ := s2.Delivery(ctx, "github", id, window); !seen {
			lost = append(lost, id)
		}
	}
	if !reflect.DeepEqual(lost, []string{"shop/p9"}) {
		t.Errorf("deliveries lost: %v, want only shop/p9, the damaged record's", lost)
	}
}

func TestJoinLogDamageCountsThePushesLost(t *testing.T) {
	rec := func(seq uint64) []byte {
		return encodeJoin(nil, &joined{seq: seq, job: 1, data: []byte(`{"id":1}`), provider: "github", id: fmt.Sprint("d", seq)})
	}
	recs := func(from, to uint64) []byte {
		var b []byte
		for s := from; s <= to; s++ {
			b = append(b, rec(s)...)
		}
		return b
	}
	garbage := bytes.Repeat([]byte{0xa5}, 100)
	type report struct {
		File        string `json:"file"`
		RecordsLost int    `json:"records_lost"`
		AtLeast     bool   `json:"records_lost_at_least"`
	}
	for _, tc := range []struct {
		name   string
		files  map[int][]byte // by file number
		folded uint64
		want   []report // file numbers as names
		left   int      // pushes read
	}{
		{"damage at the end of a file, the next file goes on",
			map[int][]byte{1: append(recs(1, 3), garbage...), 2: recs(6, 7)}, 0,
			[]report{{File: "1", RecordsLost: 2}}, 5},
		{"a file all garbage between two",
			map[int][]byte{1: recs(1, 2), 2: garbage, 3: recs(9, 9)}, 0,
			[]report{{File: "2", RecordsLost: 6}}, 3},
		{"damage after the last record",
			map[int][]byte{1: append(recs(1, 4), garbage...)}, 0,
			[]report{{File: "1", RecordsLost: 1, AtLeast: true}}, 4},
		{"damage among records already folded",
			map[int][]byte{1: append(append(recs(1, 2), garbage...), recs(4, 6)...)}, 5,
			[]report{{File: "1", RecordsLost: 0}}, 1},
		{"a file with nothing whole, numbered 10 after 9",
			map[int][]byte{9: recs(1, 1), 10: garbage, 11: recs(3, 3)}, 0,
			[]report{{File: "10", RecordsLost: 1}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := filepath.Join(t.TempDir(), "db-joins")
			for num, b := range tc.files {
				if err := os.WriteFile(fmt.Sprint(base, ".", num), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			l, err := openJoinLog(base, tc.folded, zerolog.New(&out))
			if err != nil {
				t.Fatal(err)
			}
			defer l.close()
			var got []report
			for dec := json.NewDecoder(&out); dec.More(); {
				var r report
				if err := dec.Decode(&r); err != nil {
					t.Fatal(err)
				}
				r.File = strings.TrimPrefix(r.File, base+".")
				got = append(got, r)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("reports %+v, want %+v", got, tc.want)
			}
			if n := l.backlog(); n != tc.left {
				t.Errorf("%d pushes read, want %d", n, tc.left)
			}
		})
	}
}
