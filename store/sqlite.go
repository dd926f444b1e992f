package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/swarmhook/swarmhook/job"
)

// ErrNotFound means no record has that key.
var ErrNotFound = errors.New("store: not found")

// migrations upgrade the schema; entry i takes version i to i+1. Never
// edit one that has shipped: append a new one.
var migrations = []string{
	`CREATE TABLE jobs (
		id       INTEGER PRIMARY KEY AUTOINCREMENT,
		project  TEXT NOT NULL,
		number   INTEGER NOT NULL,
		status   TEXT NOT NULL,
		branch   TEXT NOT NULL,
		created  INTEGER NOT NULL,
		finished INTEGER,
		data     TEXT NOT NULL,
		UNIQUE (project, number)
	);
	CREATE INDEX jobs_status ON jobs (status);
	CREATE INDEX jobs_project_branch ON jobs (project, branch, id);
	CREATE TABLE job_services (
		job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
		service TEXT NOT NULL,
		PRIMARY KEY (job_id, service)
	);
	CREATE INDEX job_services_service ON job_services (service, job_id);
	CREATE TABLE build_numbers (
		project TEXT PRIMARY KEY,
		last    INTEGER NOT NULL
	);
	CREATE TABLE deliveries (
		provider TEXT NOT NULL,
		id       TEXT NOT NULL,
		jobs     TEXT NOT NULL,
		received INTEGER NOT NULL,
		PRIMARY KEY (provider, id)
	);`,
	// Deliveries keyed by (provider, id) alone: in a rowid table every
	// new delivery wrote two B-tree pages, the table's and its key
	// index's; without a rowid the key index is the table, one page per
	// delivery and one WAL frame less per commit.
	`CREATE TABLE deliveries_by_id (
		provider TEXT NOT NULL,
		id       TEXT NOT NULL,
		jobs     TEXT NOT NULL,
		received INTEGER NOT NULL,
		PRIMARY KEY (provider, id)
	) WITHOUT ROWID;
	INSERT INTO deliveries_by_id (provider, id, jobs, received)
		SELECT provider, id, jobs, received FROM deliveries;
	DROP TABLE deliveries;
	ALTER TABLE deliveries_by_id RENAME TO deliveries;`,
}

// readCache bounds the page cache of each read connection (and the
// checkpointer's) to 256 KiB instead of SQLite's 2 MiB: their pages are
// in the OS page cache anyway, and at 2 MiB each the five of them kept
// up to 10 MiB of a history listing resident after it was served.
const readCache = "&_pragma=cache_size(-256)"

// readConns is how many connections serve reads. In WAL mode readers
// never wait for the writer, so API reads and redelivery checks go on
// while a batch commits.
const readConns = 4

// SQLite is the job store. It is safe for concurrent use.
//
// Every write goes through one writer goroutine that owns the one write
// connection and commits concurrent writes together (see writer); reads
// use a pool of read-only connections. The database runs in WAL mode
// with synchronous=NORMAL: a committed write survives the process
// crashing or being killed; only a power loss or OS crash can lose the
// last commits.
type SQLite struct {
	read  *sql.DB
	write *sql.DB
	w     *writer
	// Reads on every request, prepared once (per read connection).
	getJob, findDelivery *sql.Stmt
	// ckpt is the checkpointer's connection; see checkpoint.
	ckpt               *sql.DB
	stopCkpt, ckptDone chan struct{}
	// ckptEvery and restartFrames are checkpointEvery and restartFrames,
	// smaller in tests.
	ckptEvery     time.Duration
	restartFrames int
	closeOnce     sync.Once
	// nextID is the ID the next job gets, known once read on the writer
	// goroutine and dropped (0) whenever a transaction rolls back. Only
	// the writer goroutine touches it.
	nextID int64
}

// OpenSQLite opens (creating if needed) the database at path and brings
// its schema up to date.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	return openSQLite(ctx, path, checkpointEvery, restartFrames)
}

func openSQLite(ctx context.Context, path string, ckptEvery time.Duration, restartFrames int) (*SQLite, error) {
	if err := usePageSize(ctx, path, pageSize); err != nil {
		return nil, err
	}
	pragmas := "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	// The writer never checkpoints (copies the WAL back into the
	// database, with an fsync): the checkpointer does, off the write path.
	write, err := sql.Open("sqlite", "file:"+path+pragmas+"&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// One write connection, owned by the writer: SQLite has one writer
	// anyway, and this keeps "database is locked" out of the picture.
	write.SetMaxOpenConns(1)
	s := &SQLite{write: write, ckptEvery: ckptEvery, restartFrames: restartFrames}
	if err := s.migrate(ctx); err != nil {
		write.Close()
		return nil, err
	}
	conn, err := write.Conn(ctx)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	read, err := sql.Open("sqlite", "file:"+path+pragmas+"&_pragma=query_only(1)"+readCache)
	if err != nil {
		conn.Close()
		write.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	read.SetMaxOpenConns(readConns)
	read.SetMaxIdleConns(readConns)
	s.read = read
	if s.getJob, err = read.PrepareContext(ctx, "SELECT data FROM jobs WHERE id = ?"); err == nil {
		s.findDelivery, err = read.PrepareContext(ctx, findDelivery)
	}
	if err != nil {
		conn.Close()
		read.Close()
		write.Close()
		return nil, fmt.Errorf("open store %s: prepare reads: %w", path, err)
	}
	s.w = newWriter(conn, func() { s.nextID = 0 })
	ckpt, err := sql.Open("sqlite", "file:"+path+pragmas+readCache)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	ckpt.SetMaxOpenConns(1)
	s.ckpt = ckpt
	s.stopCkpt, s.ckptDone = make(chan struct{}), make(chan struct{})
	go s.checkpoint()
	return s, nil
}

// pageSize is the database's page size, the unit SQLite writes to the
// WAL. A push changes a few hundred bytes on two or three pages, and
// each is written whole: at SQLite's default of 4 KiB the intake
// benchmark wrote about 8 KiB to disk per delivery, at 1 KiB about 3 KiB
// (bench/README.md, Intake).
const pageSize = 1024

// usePageSize rebuilds the database at path with pages of size bytes if
// it has others: a new database before its first write, or a store an
// earlier swarmhook left, once. A page size holds from a database's
// first write and cannot change in WAL mode, so this leaves WAL mode
// and runs VACUUM (the caller's open turns WAL mode on again).
func usePageSize(ctx context.Context, path string, size int) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	defer db.Close()
	// One connection: the pragmas below hold for it alone.
	db.SetMaxOpenConns(1)
	var have int
	if err := db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&have); err != nil {
		return fmt.Errorf("open store %s: read page size: %w", path, err)
	}
	if have == size {
		return nil
	}
	for _, q := range []string{"PRAGMA journal_mode = DELETE", fmt.Sprintf("PRAGMA page_size = %d", size), "VACUUM"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("open store %s: set page size %d: %s: %w", path, size, q, err)
		}
	}
	return nil
}

// checkpointEvery is how often the WAL is copied back into the
// database. Between checkpoints the WAL grows by what was committed,
// a few MiB at thousands of jobs a second.
const checkpointEvery = 250 * time.Millisecond

// restartFrames is the WAL length, in pages, from which a checkpoint is
// finished by the writer itself (see checkpoint): 4,096 pages, 16 MiB.
const restartFrames = 4096

// checkpoint copies committed pages from the WAL into the database file
// until Close, without blocking the writer or readers (PASSIVE). Done
// here, the fsync a checkpoint costs never holds up a commit.
//
// A checkpoint beside the writer never quite finishes while writes keep
// coming: pages arrive while it copies, so the WAL is never all copied
// when the next write begins, never starts over, and grows without end
// (300 MB in 10 s of the intake benchmark, a 3 MB database). So once the
// WAL passes restartFrames, the writer runs one more checkpoint itself
// between two transactions: it copies only what came in during the one
// just run here, nothing can write meanwhile, so it finishes, and the
// next write starts the WAL over from its first page.
func (s *SQLite) checkpoint() {
	defer close(s.ckptDone)
	tick := time.NewTicker(s.ckptEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.stopCkpt:
			return
		case <-tick.C:
			// A failed checkpoint is retried at the next tick; the WAL
			// only grows meanwhile.
			var busy, frames, copied int
			if err := s.ckpt.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil || frames < s.restartFrames {
				continue
			}
			s.w.between(context.Background(), func(conn *sql.Conn) error {
				_, err := conn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
				return err
			})
		}
	}
}

// Close commits the writes already handed in and closes the database.
func (s *SQLite) Close() error {
	var ckptErr error
	if s.ckpt != nil {
		s.closeOnce.Do(func() { close(s.stopCkpt) })
		<-s.ckptDone
		ckptErr = s.ckpt.Close()
	}
	s.w.close()
	s.w.conn.Close()
	s.getJob.Close()
	s.findDelivery.Close()
	return errors.Join(ckptErr, s.read.Close(), s.write.Close())
}

func (s *SQLite) migrate(ctx context.Context) error {
	var version int
	if err := s.write.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("store schema version %d is newer than this swarmhook knows (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate to %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to %d: %w", i+1, err)
		}
	}
	return nil
}

func millis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

// Create stores a new job and sets its ID and its per-project build
// number, Jenkins-style: 1, 2, 3... for each project, never reused even
// after old jobs are trimmed. In the same transaction it remembers
// w.Delivery. It returns once all of it has committed.
func (s *SQLite) Create(ctx context.Context, j *job.Job, w job.With) error {
	var id, number int64
	var seen []int64
	err := s.w.do(ctx, func(tx *wtx) error {
		seen = nil
		if s.nextID == 0 {
			if err := tx.queryRow("SELECT COALESCE(MAX(seq), 0) + 1 FROM sqlite_sequence WHERE name = 'jobs'").Scan(&s.nextID); err != nil {
				return fmt.Errorf("create job: next id: %w", err)
			}
		}
		id = s.nextID
		if d := w.Delivery; d != nil {
			var err error
			if seen, err = record(tx, d, id); err != nil || seen != nil {
				return err // a redelivery writes nothing
			}
		}
		if err := tx.queryRow(`INSERT INTO build_numbers (project, last) VALUES (?, 1)
			ON CONFLICT (project) DO UPDATE SET last = last + 1 RETURNING last`, j.Project).Scan(&number); err != nil {
			return fmt.Errorf("create job: number: %w", err)
		}
		rec := *j
		rec.ID, rec.Number = id, number
		data, err := json.Marshal(&rec)
		if err != nil {
			return fmt.Errorf("create job: %w", err)
		}
		if _, err := tx.exec("INSERT INTO jobs (id, project, number, status, branch, created, finished, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			id, j.Project, number, j.Status, j.Branch, j.Created.UnixMilli(), millis(j.Finished), data); err != nil {
			return fmt.Errorf("create job: %w", err)
		}
		s.nextID++
		return saveServices(tx, &rec)
	})
	if err != nil {
		return err
	}
	if seen != nil {
		return &job.RedeliveryError{Jobs: seen}
	}
	j.ID, j.Number = id, number
	return nil
}

// Join saves queued build j, which a push joined, and remembers d as
// having started it, in one transaction; a redelivery (d seen since
// d.Since) writes nothing and returns *job.RedeliveryError. It fails with
// ErrNotFound when j is no longer queued: a push must never join a build
// that has started.
func (s *SQLite) Join(ctx context.Context, j *job.Job, d *job.Delivery) error {
	// j is only read, and only until Join returns: no copy is kept.
	var seen []int64
	err := s.w.do(ctx, func(tx *wtx) error {
		seen = nil
		if d != nil {
			var err error
			if seen, err = record(tx, d, j.ID); err != nil || seen != nil {
				return err // a redelivery writes nothing
			}
		}
		data, err := json.Marshal(j)
		if err != nil {
			return fmt.Errorf("join job %d: %w", j.ID, err)
		}
		// Only data changes: status and the indexed columns stay.
		res, err := tx.exec("UPDATE jobs SET data = ? WHERE id = ? AND status = ?", data, j.ID, job.Queued)
		if err != nil {
			return fmt.Errorf("join job %d: %w", j.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("join job %d: no queued job: %w", j.ID, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if seen != nil {
		return &job.RedeliveryError{Jobs: seen}
	}
	return nil
}

// Save replaces the stored record of an existing job.
func (s *SQLite) Save(ctx context.Context, j *job.Job) error {
	rec := j.Clone() // the caller may change j once Save returns
	return s.w.do(ctx, func(tx *wtx) error { return save(tx, rec) })
}

func save(tx *wtx, j *job.Job) error {
	data, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("save job %d: %w", j.ID, err)
	}
	res, err := tx.exec("UPDATE jobs SET status = ?, finished = ?, data = ? WHERE id = ?",
		j.Status, millis(j.Finished), data, j.ID)
	if err != nil {
		return fmt.Errorf("save job %d: %w", j.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("save job %d: %w", j.ID, ErrNotFound)
	}
	return saveServices(tx, j)
}

func saveServices(tx *wtx, j *job.Job) error {
	for _, svc := range j.Services {
		if _, err := tx.exec("INSERT OR IGNORE INTO job_services (job_id, service) VALUES (?, ?)", j.ID, svc.Service); err != nil {
			return fmt.Errorf("save job %d: %w", j.ID, err)
		}
	}
	return nil
}

// Get returns job id.
func (s *SQLite) Get(ctx context.Context, id int64) (*job.Job, error) {
	var data []byte
	err := s.getJob.QueryRowContext(ctx, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read job %d: %w", id, err)
	}
	var j job.Job
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("decode job %d: %w", id, err)
	}
	return &j, nil
}

// Filter selects jobs for List. Zero fields select everything.
type Filter struct {
	Project, Branch, Service string
	Status                   job.Status
	// Before pages backwards: only jobs with a smaller ID.
	Before int64
	// Limit caps the result; 0 means 50.
	Limit int
}

// List returns matching jobs, newest first.
func (s *SQLite) List(ctx context.Context, f Filter) ([]*job.Job, error) {
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if f.Project != "" {
		add("project = ?", f.Project)
	}
	if f.Branch != "" {
		add("branch = ?", f.Branch)
	}
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if f.Service != "" {
		add("id IN (SELECT job_id FROM job_services WHERE service = ?)", f.Service)
	}
	if f.Before > 0 {
		add("id < ?", f.Before)
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	q := "SELECT data FROM jobs"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	return s.query(ctx, q, append(args, f.Limit)...)
}

func (s *SQLite) query(ctx context.Context, q string, args ...any) ([]*job.Job, error) {
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []*job.Job
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		j := &job.Job{}
		if err := json.Unmarshal(data, j); err != nil {
			return nil, fmt.Errorf("decode job: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// Unfinished returns every job still queued or running, oldest first: at
// start-up these are what a previous process left behind.
func (s *SQLite) Unfinished(ctx context.Context) ([]*job.Job, error) {
	return s.query(ctx, "SELECT data FROM jobs WHERE status IN (?, ?) ORDER BY id", job.Queued, job.Running)
}

// findDelivery reads the jobs of a delivery seen at or after a time.
const findDelivery = "SELECT jobs FROM deliveries WHERE provider = ? AND id = ? AND received >= ?"

// Delivery returns the jobs a delivery started, if it was seen after since.
func (s *SQLite) Delivery(ctx context.Context, provider, id string, since time.Time) ([]int64, bool, error) {
	jobs, err := delivery(s.findDelivery.QueryRowContext(ctx, provider, id, since.UnixMilli()), provider, id)
	return jobs, jobs != nil, err
}

// delivery decodes the jobs a delivery record names; nil without a record.
func delivery(row *sql.Row, provider, id string) ([]int64, error) {
	var raw string
	err := row.Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read delivery %s/%s: %w", provider, id, err)
	}
	jobs := []int64{}
	if err := json.Unmarshal([]byte(raw), &jobs); err != nil {
		return nil, fmt.Errorf("decode delivery %s/%s: %w", provider, id, err)
	}
	return jobs, nil
}

// recordDelivery inserts a delivery's record, or replaces one older
// than the redelivery window (the last argument): a record inside the
// window is left as it is, and the statement changes no row.
const recordDelivery = `INSERT INTO deliveries (provider, id, jobs, received) VALUES (?, ?, ?, ?)
	ON CONFLICT (provider, id) DO UPDATE SET jobs = excluded.jobs, received = excluded.received
	WHERE deliveries.received < ?`

// record remembers d as having started its Earlier jobs and id, in one
// statement, unless d was seen at or after d.Since: then it writes
// nothing and returns the jobs d started then.
func record(tx *wtx, d *job.Delivery, id int64) ([]int64, error) {
	raw := make([]byte, 0, 24)
	raw = append(raw, '[')
	for _, e := range d.Earlier {
		raw = append(strconv.AppendInt(raw, e, 10), ',')
	}
	raw = append(strconv.AppendInt(raw, id, 10), ']')
	res, err := tx.exec(recordDelivery, d.Provider, d.ID, string(raw), d.At.UnixMilli(), d.Since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("record delivery %s/%s: %w", d.Provider, d.ID, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil, nil
	}
	seen, err := delivery(tx.queryRow(findDelivery, d.Provider, d.ID, d.Since.UnixMilli()), d.Provider, d.ID)
	if err == nil && seen == nil {
		err = fmt.Errorf("record delivery %s/%s: neither recorded nor found", d.Provider, d.ID)
	}
	return seen, err
}

// Trim deletes finished jobs that ended before cutoff, and deliveries
// older than it, and returns the IDs of the jobs deleted so their logs
// can go too.
func (s *SQLite) Trim(ctx context.Context, cutoff time.Time) ([]int64, error) {
	var ids []int64
	err := s.w.do(ctx, func(tx *wtx) error {
		ids = ids[:0]
		rows, err := tx.query("DELETE FROM jobs WHERE finished IS NOT NULL AND finished < ? RETURNING id", cutoff.UnixMilli())
		if err != nil {
			return fmt.Errorf("trim jobs: %w", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("trim jobs: %w", err)
			}
			ids = append(ids, id)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("trim jobs: %w", err)
		}
		if _, err := tx.exec("DELETE FROM deliveries WHERE received < ?", cutoff.UnixMilli()); err != nil {
			return fmt.Errorf("trim deliveries: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}
