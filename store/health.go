package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors that say the data directory, not the request, is at fault. A
// caller should answer them with "try again later" and their text, which
// names no secret.
var (
	// ErrFull means a write failed for lack of room in data_dir
	// (SQLITE_FULL, ENOSPC, EDQUOT).
	ErrFull = errors.New("store: data_dir full")
	// ErrIO means the disk failed a read or write (SQLITE_IOERR, EIO).
	ErrIO = errors.New("store: data_dir i/o error")
	// ErrCorrupt means the database file is damaged (SQLITE_CORRUPT,
	// SQLITE_NOTADB, or a failed integrity check).
	ErrCorrupt = errors.New("store: database corrupt")
)

// classify wraps err in the sentinel above that says what it means, if
// any does. SQLite reports the file system's ENOSPC and EIO as
// SQLITE_FULL and SQLITE_IOERR.
func classify(err error) error {
	var se *sqlite.Error
	if errors.Is(err, ErrFull) || errors.Is(err, ErrIO) || errors.Is(err, ErrCorrupt) || !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_FULL:
		return fmt.Errorf("%w: %w", ErrFull, err)
	case sqlite3.SQLITE_IOERR:
		return fmt.Errorf("%w: %w", ErrIO, err)
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// minFree is the free space in data_dir below which the store reports
// itself unwritable: a commit writes a few KiB to the WAL, a checkpoint
// grows the database, a job writes its log and checkout beside it.
const minFree = 1 << 20

// checkEvery is how often Writable runs SQLite's quick_check. On a
// database of 10,000 jobs (16 MB, in the OS page cache) it took 17 ms;
// once a minute costs nothing.
const checkEvery = time.Minute

// health is what the store learnt about its files from its own reads
// and writes, for Writable. Safe for concurrent use.
type health struct {
	mu sync.Mutex
	// failed is the last write's ErrIO, nil once one commits. (Lack of
	// room Writable asks the file system about.)
	failed error
	// corrupt is the first ErrCorrupt seen: a damaged file does not heal.
	corrupt error
	// checked is when quick_check last ran.
	checked time.Time
}

// note classifies err, remembers what it says of the files, and returns
// it classified.
func (h *health) note(err error) error {
	err = classify(err)
	if err == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case errors.Is(err, ErrCorrupt):
		if h.corrupt == nil {
			h.corrupt = err
		}
	case errors.Is(err, ErrIO):
		h.failed = err
	}
	return err
}

// committed notes that a write went through.
func (h *health) committed() {
	h.mu.Lock()
	h.failed = nil
	h.mu.Unlock()
}

// Writable reports whether the store can take writes now, and why not:
// the database was found damaged (ErrCorrupt); data_dir has less than
// minFree or no inode left (ErrFull); the last write failed for a disk
// error and no write has gone through since (ErrIO); or SQLite's write
// lock cannot be taken (a read-only file, a locked database, a closed
// store). Every checkEvery it also runs SQLite's quick_check. It writes
// nothing.
//
// Lack of room is asked of the file system rather than remembered from
// a failed write, so the store is ready again once space returns,
// without waiting for a write an instance taken out of traffic would
// never get.
func (s *SQLite) Writable(ctx context.Context) error {
	s.health.mu.Lock()
	corrupt, failed, due := s.health.corrupt, s.health.failed, time.Since(s.health.checked) >= checkEvery
	if due {
		s.health.checked = time.Now() // one probe at a time runs it
	}
	s.health.mu.Unlock()
	if corrupt != nil {
		return corrupt
	}
	if err := room(filepath.Dir(s.path)); err != nil {
		return err
	}
	if failed != nil {
		return failed
	}
	// A check the probe's deadline cuts short (a database of many
	// GB) found nothing: a slow check is no reason to take traffic away.
	if due {
		if err := quickCheck(ctx, s.path); err != nil && ctx.Err() == nil {
			return fmt.Errorf("store %s: %w", s.path, s.health.note(err))
		}
	}
	// BEGIN IMMEDIATE (see pragmas) takes the write lock; the rollback
	// lets it go with nothing written.
	tx, err := s.write.BeginTx(ctx, nil)
	if err == nil {
		err = tx.Rollback()
	}
	if err != nil {
		return fmt.Errorf("store: take write lock: %w", s.health.note(err))
	}
	return nil
}

// room fails with ErrFull unless the file system of dir has minFree
// bytes and a file left for an unprivileged process.
func room(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("store: free space in %s: %w", dir, err)
	}
	if free := uint64(st.Bavail) * uint64(st.Bsize); free < minFree {
		return fmt.Errorf("%w: %d bytes free in %s", ErrFull, free, dir)
	}
	if st.Files > 0 && st.Ffree == 0 {
		return fmt.Errorf("%w: no inodes free in %s", ErrFull, dir)
	}
	return nil
}

// quickCheck runs SQLite's quick_check on the database at path: every
// page is read from the file, on a connection of its own that has none
// cached, and its structure checked. It fails with ErrCorrupt and the
// first problem found, unless all is well.
func quickCheck(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		return fmt.Errorf("quick_check: %w", err)
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check(1)").Scan(&result); err != nil {
		return fmt.Errorf("quick_check: %w", classify(err))
	}
	if result != "ok" {
		return fmt.Errorf("quick_check: %w: %s", ErrCorrupt, result)
	}
	return nil
}

// checkFile refuses a database file that cannot be swarmhook's history:
// an empty one (a new database is created only where there is no file
// at all) or one that fails quick_check. A missing file is fine.
func checkFile(ctx context.Context, path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	if st.Size() == 0 {
		// With WAL mode a new database may live in its WAL alone until
		// the first checkpoint.
		if wal, err := os.Stat(path + "-wal"); err != nil || wal.Size() == 0 {
			return fmt.Errorf("open store %s: %w: the file is empty, so the job history it held is lost; "+
				"restore it from a backup, or delete it to start with an empty history", path, ErrCorrupt)
		}
	}
	if err := quickCheck(ctx, path); err != nil {
		return fmt.Errorf("open store %s: %w; restore it from a backup, or move it aside to start with an empty history", path, err)
	}
	return nil
}
