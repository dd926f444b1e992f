package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/job"
)

// insertMark is a write of one row into a table of the test's own.
func insertMark(name string) func(tx *wtx) error {
	return func(tx *wtx) error {
		_, err := tx.exec("INSERT INTO marks (name) VALUES (?)", name)
		return err
	}
}

func openMarks(t *testing.T) (*SQLite, string) {
	t.Helper()
	s, path := openTemp(t)
	if err := s.w.do(context.Background(), func(tx *wtx) error {
		_, err := tx.exec("CREATE TABLE marks (name TEXT PRIMARY KEY)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return s, path
}

// marks reopens the database at path, as after a restart, and returns
// its marks.
func marks(t *testing.T, path string) map[string]bool {
	t.Helper()
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.read.Query("SELECT name FROM marks")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]bool{}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		got[n] = true
	}
	return got
}

// holdWriter blocks the writer goroutine until the returned func is
// called, so the writes handed in meanwhile form one batch.
func holdWriter(t *testing.T, w *writer) (release func()) {
	t.Helper()
	held, gate := make(chan struct{}), make(chan struct{})
	go w.do(context.Background(), func(*wtx) error { close(held); <-gate; return nil })
	<-held
	return func() { close(gate) }
}

// waitQueued waits until n writes wait for the writer.
func waitQueued(t *testing.T, w *writer, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(w.ops) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", len(w.ops), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConcurrentWritesAreAllDurable(t *testing.T) {
	s, path := openMarks(t)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.w.do(context.Background(), insertMark(fmt.Sprint("m", i)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if got := marks(t, path); len(got) != n {
		t.Errorf("%d of %d acknowledged writes survived a reopen", len(got), n)
	}
}

func TestFailedWriteFailsOnlyItsCaller(t *testing.T) {
	s, path := openMarks(t)
	release := holdWriter(t, s.w)
	boom := errors.New("boom")
	writes := map[string]func(*wtx) error{
		"good-1": insertMark("good-1"),
		// Writes a row, then fails: the row must not survive.
		"bad": func(tx *wtx) error {
			if err := insertMark("bad")(tx); err != nil {
				return err
			}
			return boom
		},
		// Breaks a constraint: SQLite's own error.
		"dup": func(tx *wtx) error {
			if err := insertMark("dup")(tx); err != nil {
				return err
			}
			return insertMark("dup")(tx)
		},
		"good-2": insertMark("good-2"),
	}
	var mu sync.Mutex
	got := map[string]error{}
	var wg sync.WaitGroup
	for name, fn := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.w.do(context.Background(), fn)
			mu.Lock()
			got[name] = err
			mu.Unlock()
		}()
	}
	waitQueued(t, s.w, len(writes)) // all four in the writer's next batch
	release()
	wg.Wait()
	if !errors.Is(got["bad"], boom) {
		t.Errorf("failing write got %v, want its own error", got["bad"])
	}
	if got["dup"] == nil {
		t.Error("a write breaking a constraint reported success")
	}
	for _, name := range []string{"good-1", "good-2"} {
		if got[name] != nil {
			t.Errorf("%s shared a batch with failing writes and failed: %v", name, got[name])
		}
	}
	s.Close()
	want := map[string]bool{"good-1": true, "good-2": true}
	if m := marks(t, path); len(m) != 2 || !m["good-1"] || !m["good-2"] {
		t.Errorf("stored %v, want %v", m, want)
	}
}

func TestCloseFlushesWaitingWrites(t *testing.T) {
	s, path := openMarks(t)
	release := holdWriter(t, s.w)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- s.w.do(context.Background(), insertMark(fmt.Sprint("m", i))) }()
	}
	waitQueued(t, s.w, n)
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("write handed in before Close: %v", err)
		}
	}
	if err := s.w.do(context.Background(), insertMark("late")); !errors.Is(err, ErrClosed) {
		t.Errorf("write after Close: %v, want ErrClosed", err)
	}
	if got := marks(t, path); len(got) != n {
		t.Errorf("%d of %d writes waiting at Close were stored", len(got), n)
	}
}

func TestWALStartsOverUnderContinuousWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "swarmhook.db")
	const frames = 64
	s, err := openSQLite(context.Background(), path, tuning{ckptEvery: 5 * time.Millisecond, restartFrames: frames, foldEvery: foldEvery}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Writers that never pause: a checkpoint beside them alone would
	// never finish, and the WAL would hold every page written.
	ctx := context.Background()
	var wg sync.WaitGroup
	const writers, each = 8, 500
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				j := &job.Job{Project: "shop", Branch: fmt.Sprintf("b%d", w), Status: job.Queued, Created: time.Now()}
				d := &job.Delivery{Provider: "github", ID: fmt.Sprintf("shop/%d-%d", w, i), At: time.Now(), Since: time.Now().Add(-time.Hour)}
				if err := s.Create(ctx, j, job.With{Delivery: d}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	// Each commit writes pages for a job, its index entries and its
	// delivery, about five per job at 1 KiB pages: a WAL that never
	// starts over holds them all (19,300 to 19,900 frames here without
	// the writer's checkpoint). One that does holds what came between two
	// restarts: 700 to 1,000 frames here, 5,213 once in CI beside the
	// engine's tests. Fewer than two frames per job says it started
	// over, with room for a slow machine's fewer checkpoints.
	walFrames, written := st.Size()/(pageSize+24), int64(writers*each)
	if walFrames >= 2*written {
		t.Errorf("WAL is %d frames after %d jobs: it never started over", walFrames, written)
	}
	t.Logf("%d jobs, WAL %d frames", written, walFrames)
}

func TestStepsAloneLetTheBeginHookDoPart(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "steps.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var parts []bool // the writer goroutine's until close
	w := newWriter(conn, writerHooks{begin: func(_ *wtx, part bool) error {
		parts = append(parts, part)
		return nil
	}})
	nothing := func(*wtx) error { return nil }
	if err := w.step(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.do(ctx, nothing); err != nil {
		t.Fatal(err)
	}
	// A step sharing a batch with a caller's write: the hook does all.
	release := holdWriter(t, w)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.step(ctx) }()
	waitQueued(t, w, 1)
	go func() { defer wg.Done(); w.do(ctx, nothing) }()
	waitQueued(t, w, 2)
	release()
	wg.Wait()
	w.close()
	// The held write's transaction, then the step and the write's.
	want := []bool{true, false, false, false}
	if !reflect.DeepEqual(parts, want) {
		t.Errorf("begin hook's part: %v, want %v (step alone, write alone, the held write, step with a write)", parts, want)
	}
}
