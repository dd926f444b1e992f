package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swarmhook/swarmhook/internal/testenv"
	"github.com/swarmhook/swarmhook/job"
)

func TestWritable(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if err := s.Writable(ctx); err != nil {
		t.Fatalf("fresh store: %v", err)
	}
	s.Close()
	if err := s.Writable(ctx); err == nil {
		t.Error("a closed store reported writable")
	}

	// A file swarmhook may not write is opened read-only by SQLite; the
	// check must say so.
	if os.Getuid() == 0 {
		t.Log("running as root: file modes do not stop writes, read-only case not checked")
		return
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Writable(ctx); err == nil {
		t.Error("a read-only database reported writable")
	}
}

// fillJobs creates n jobs with a few KiB each, so the database spans
// many more pages than a connection caches, and copies them all into the
// database file.
func fillJobs(t *testing.T, s *SQLite, path string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		j := &job.Job{Project: "shop", Branch: "main", Status: job.Succeeded, Created: time.Now(), Error: strings.Repeat(fmt.Sprint(i), 500)}
		if err := s.Create(ctx, j, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A connection of the test's own copies the WAL into the file.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
}

// pageSize is SQLite's default page size, which the store keeps.
const pageSize = 4096

// damage overwrites the start of every page in the second half of the
// database file at path with garbage.
func damage(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	for off := st.Size() / 2 / pageSize * pageSize; off < st.Size(); off += pageSize {
		if _, err := f.WriteAt([]byte("\xde\xad\xbe\xef\xde\xad\xbe\xef"), off); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenRefusesADamagedDatabase(t *testing.T) {
	ctx := context.Background()
	// A real history, closed cleanly: everything is in the file.
	good := filepath.Join(t.TempDir(), "swarmhook.db")
	s, err := OpenSQLite(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	fillJobs(t, s, good, 300)
	s.Close()
	real, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		content func(path string)
		want    string
	}{
		{"garbage", func(path string) { os.WriteFile(path, []byte(strings.Repeat("not a database ", 500)), 0o600) }, "restore it from a backup"},
		{"truncated", func(path string) { os.WriteFile(path, real[:len(real)/2], 0o600) }, "restore it from a backup"},
		{"bytes overwritten", func(path string) { os.WriteFile(path, real, 0o600); damage(t, path) }, "restore it from a backup"},
		{"zero length", func(path string) { os.WriteFile(path, nil, 0o600) }, "delete it to start with an empty history"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "swarmhook.db")
			tc.content(path)
			before, _ := os.ReadFile(path)
			s, err := OpenSQLite(ctx, path)
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("open: %v, want ErrCorrupt naming %s and saying %q", err, path, tc.want)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Error("the refused file was changed")
			}
		})
	}

	// A data_dir without the file starts a new history.
	s, err = OpenSQLite(ctx, filepath.Join(t.TempDir(), "swarmhook.db"))
	if err != nil {
		t.Fatalf("new data_dir: %v", err)
	}
	s.Close()
}

func TestWritableReportsDamageFoundAtRunTime(t *testing.T) {
	for _, tc := range []struct {
		name string
		// find is how the damage comes to light.
		find func(t *testing.T, s *SQLite)
	}{
		{"by a read", func(t *testing.T, s *SQLite) {
			if _, err := s.List(context.Background(), Filter{Limit: 500}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("List over a damaged page: %v, want ErrCorrupt", err)
			}
		}},
		{"by quick_check", func(t *testing.T, s *SQLite) {}},
	} {
		// In a synctest bubble, so the test can let checkEvery pass.
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				s, path := openTemp(t)
				fillJobs(t, s, path, 300)
				if err := s.Writable(ctx); err != nil {
					t.Fatalf("before the damage: %v", err)
				}
				damage(t, path)
				time.Sleep(checkEvery) // quick_check is due
				tc.find(t, s)
				if err := s.Writable(ctx); !errors.Is(err, ErrCorrupt) {
					t.Errorf("Writable after the damage: %v, want ErrCorrupt", err)
				}
			})
		})
	}
}

func TestAFullDataDir(t *testing.T) {
	ctx := context.Background()
	dir := testenv.Tmpfs(t, 8<<20)
	s, err := OpenSQLite(ctx, filepath.Join(dir, "swarmhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	free := testenv.Fill(t, dir)

	// Writes go on into space the WAL already holds, so write until one
	// finds none.
	newJob := func() error {
		return s.Create(ctx, &job.Job{Project: "shop", Branch: "other", Status: job.Queued, Created: time.Now(), Error: strings.Repeat("x", 2000)}, nil)
	}
	for _, tc := range []struct {
		name  string
		write func(i int) error
		want  string
	}{
		{"create", func(int) error { return newJob() }, "database or disk is full"},
	} {
		var err error
		for i := 0; err == nil && i < 10000; i++ {
			err = tc.write(i)
		}
		if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "store: data_dir full") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s on a full data_dir: %v, want ErrFull saying %q", tc.name, err, tc.want)
		}
	}
	if err := s.Writable(ctx); !errors.Is(err, ErrFull) {
		t.Errorf("Writable on a full data_dir: %v, want ErrFull", err)
	}

	free()
	if err := s.Writable(ctx); err != nil {
		t.Errorf("Writable once there is room again: %v", err)
	}
	if err := newJob(); err != nil {
		t.Errorf("a write once there is room again: %v", err)
	}
}
