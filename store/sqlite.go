package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	// The last join log record folded in, when a join log beside the
	// database held pushes; dropped with it below.
	`CREATE TABLE join_log (
		id     INTEGER PRIMARY KEY CHECK (id = 1),
		folded INTEGER NOT NULL
	);
	INSERT INTO join_log (id, folded) VALUES (1, 0);`,
	// Pushes that join a waiting build wait in memory now (job.Queue).
	`DROP TABLE join_log;`,
}

// pragmas hold for every connection. In WAL mode readers never wait for
// the writer; synchronous=NORMAL makes a commit survive the process
// crashing (only a power loss can take the last ones); SQLite checkpoints
// the WAL on its own every 1,000 pages. _txlock=immediate makes every
// transaction BEGIN IMMEDIATE: it takes the write lock at once, so two
// writers never deadlock half-way.
const pragmas = "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"

// readConns is how many connections serve reads beside the writer's one.
const readConns = 4

// readCache bounds each read connection's page cache to 256 KiB instead
// of SQLite's 2 MiB: their pages are in the OS page cache anyway, and at
// 2 MiB each they kept up to 8 MiB of a history listing resident after
// it was served (bench/idle: 31.9 MiB with 1,000 jobs, over the 30 MB
// the job-system issue allows).
const readCache = "&_pragma=cache_size(-256)"

// SQLite is the job store. It is safe for concurrent use.
//
// It has one write connection, and every write is one immediate
// transaction on it, committed before the call returns; reads use a pool
// of read-only connections. It saves and reads records: what a job's
// status may become is the job package's business.
type SQLite struct {
	write, read  *sql.DB
	findDelivery *sql.Stmt
	// path is the database file; health what reads and writes said of
	// it (see Writable).
	path   string
	health health
}

// OpenSQLite opens (creating if needed) the database at path and brings
// its schema up to date. It refuses a file that is empty or fails
// SQLite's quick_check (ErrCorrupt, naming the file): a new history is
// started only where there is no file at all.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	if err := checkFile(ctx, path); err != nil {
		return nil, err
	}
	s := &SQLite{path: path}
	var err error
	if s.write, err = sql.Open("sqlite", "file:"+path+pragmas); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.write.SetMaxOpenConns(1)
	if s.read, err = sql.Open("sqlite", "file:"+path+pragmas+"&_pragma=query_only(1)"+readCache); err != nil {
		s.write.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.read.SetMaxOpenConns(readConns)
	s.read.SetMaxIdleConns(readConns)
	if err = s.migrate(ctx); err == nil {
		s.findDelivery, err = s.read.PrepareContext(ctx, findDelivery)
	}
	if err != nil {
		s.read.Close()
		s.write.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database. Every write has committed by then: each is
// committed before it returns.
func (s *SQLite) Close() error {
	if s.findDelivery != nil {
		s.findDelivery.Close()
	}
	return errors.Join(s.read.Close(), s.write.Close())
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
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1))
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate to %d: %w", i+1, err)
		}
	}
	return nil
}

// tx runs fn in one immediate transaction on the write connection and
// commits it, or rolls it back if fn fails. Its error is classified (see
// health.note).
func (s *SQLite) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return s.health.note(fmt.Errorf("begin write: %w", err))
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return s.health.note(err)
	}
	if err := tx.Commit(); err != nil {
		return s.health.note(fmt.Errorf("commit: %w", err))
	}
	s.health.committed()
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
// after old jobs are trimmed. In the same transaction it remembers d,
// when set, as having started the job (and its Earlier jobs).
func (s *SQLite) Create(ctx context.Context, j *job.Job, d *job.Delivery) error {
	rec := j.Clone()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO build_numbers (project, last) VALUES (?, 1)
			ON CONFLICT (project) DO UPDATE SET last = last + 1 RETURNING last`, j.Project).Scan(&rec.Number); err != nil {
			return fmt.Errorf("create job: number: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO jobs (project, number, status, branch, created, finished, data)
			VALUES (?, ?, ?, ?, ?, ?, '{}') RETURNING id`,
			j.Project, rec.Number, j.Status, j.Branch, j.Created.UnixMilli(), millis(j.Finished)).Scan(&rec.ID); err != nil {
			return fmt.Errorf("create job: %w", err)
		}
		return save(ctx, tx, rec, d)
	})
	if err != nil {
		return err
	}
	j.ID, j.Number = rec.ID, rec.Number
	return nil
}

// Save replaces the stored record of an existing job and, in the same
// transaction, remembers each of ds as having started it (and its
// Earlier jobs).
func (s *SQLite) Save(ctx context.Context, j *job.Job, ds ...*job.Delivery) error {
	rec := j.Clone() // the caller may change j once Save returns
	return s.tx(ctx, func(tx *sql.Tx) error { return save(ctx, tx, rec, ds...) })
}

func save(ctx context.Context, tx *sql.Tx, j *job.Job, ds ...*job.Delivery) error {
	for _, d := range ds {
		if d == nil {
			continue
		}
		jobs, err := json.Marshal(append(slices.Clone(d.Earlier), j.ID))
		if err == nil {
			_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO deliveries (provider, id, jobs, received) VALUES (?, ?, ?, ?)`,
				d.Provider, d.ID, jobs, d.At.UnixMilli())
		}
		if err != nil {
			return fmt.Errorf("record delivery %s/%s: %w", d.Provider, d.ID, err)
		}
	}
	data, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("save job %d: %w", j.ID, err)
	}
	res, err := tx.ExecContext(ctx, "UPDATE jobs SET status = ?, finished = ?, data = ? WHERE id = ?",
		j.Status, millis(j.Finished), data, j.ID)
	if err != nil {
		return fmt.Errorf("save job %d: %w", j.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("save job %d: %w", j.ID, ErrNotFound)
	}
	for _, svc := range j.Services {
		if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO job_services (job_id, service) VALUES (?, ?)", j.ID, svc.Service); err != nil {
			return fmt.Errorf("save job %d: %w", j.ID, err)
		}
	}
	return nil
}

// Get returns job id.
func (s *SQLite) Get(ctx context.Context, id int64) (*job.Job, error) {
	jobs, err := s.query(ctx, "SELECT data FROM jobs WHERE id = ?", id)
	if err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("job %d: %w", id, ErrNotFound)
	}
	return jobs[0], nil
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
		return nil, fmt.Errorf("list jobs: %w", s.health.note(err))
	}
	defer rows.Close()
	var out []*job.Job
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("list jobs: %w", s.health.note(err))
		}
		j := &job.Job{}
		if err := json.Unmarshal(data, j); err != nil {
			return nil, fmt.Errorf("decode job: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", s.health.note(err))
	}
	return out, nil
}

// Unfinished returns every job still queued, running or waiting, oldest
// first: at start-up these are what a previous process left behind.
func (s *SQLite) Unfinished(ctx context.Context) ([]*job.Job, error) {
	return s.query(ctx, "SELECT data FROM jobs WHERE status IN (?, ?, ?) ORDER BY id", job.Queued, job.Running, job.Waiting)
}

// findDelivery reads the jobs of a delivery seen at or after a time: one
// lookup in the deliveries table's key. It runs on every webhook
// delivery: prepared once.
const findDelivery = "SELECT jobs FROM deliveries WHERE provider = ? AND id = ? AND received >= ?"

// Delivery returns the jobs a delivery started, if it was seen after since.
func (s *SQLite) Delivery(ctx context.Context, provider, id string, since time.Time) ([]int64, bool, error) {
	var raw []byte
	err := s.findDelivery.QueryRowContext(ctx, provider, id, since.UnixMilli()).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	var jobs []int64
	if err == nil {
		err = json.Unmarshal(raw, &jobs)
	}
	if err != nil {
		return nil, false, fmt.Errorf("read delivery %s/%s: %w", provider, id, s.health.note(err))
	}
	return jobs, true, nil
}

// Trim deletes finished jobs that ended before cutoff, and deliveries
// older than it, and returns the IDs of the jobs deleted so their logs
// can go too.
func (s *SQLite) Trim(ctx context.Context, cutoff time.Time) ([]int64, error) {
	var ids []int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "DELETE FROM jobs WHERE finished IS NOT NULL AND finished < ? RETURNING id", cutoff.UnixMilli())
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
		if _, err := tx.ExecContext(ctx, "DELETE FROM deliveries WHERE received < ?", cutoff.UnixMilli()); err != nil {
			return fmt.Errorf("trim deliveries: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}
