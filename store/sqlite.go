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

	"github.com/rs/zerolog"
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
	// The last join log record folded in (see joinLog).
	`CREATE TABLE join_log (
		id     INTEGER PRIMARY KEY CHECK (id = 1),
		folded INTEGER NOT NULL
	);
	INSERT INTO join_log (id, folded) VALUES (1, 0);`,
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
// connection and commits concurrent writes together (see writer), but
// for Join's, which are appended to the join log and folded in by the
// writer (see joinLog); reads use a pool of read-only connections. The
// database runs in WAL mode with synchronous=NORMAL: a committed write
// survives the process crashing or being killed; only a power loss or
// OS crash can lose the last commits.
type SQLite struct {
	read  *sql.DB
	write *sql.DB
	w     *writer
	// Reads on every request, prepared once (per read connection).
	getJob, findDelivery *sql.Stmt
	// joins holds the pushes that joined a waiting build until the
	// writer folds them in; folder asks it to (see folder).
	joins                  *joinLog
	stopFolder, folderDone chan struct{}
	// recent spares Join and Delivery a read for deliveries never seen.
	recent *recent
	// queued are the IDs of the queued jobs, so that Join can refuse a
	// job that is not without reading it.
	queuedMu sync.Mutex
	queued   map[int64]bool
	// ckpt is the checkpointer's connection; see checkpoint.
	ckpt               *sql.DB
	stopCkpt, ckptDone chan struct{}
	tune               tuning
	closeOnce          sync.Once
	// nextID is the ID the next job gets, known once read on the writer
	// goroutine and dropped (0) whenever a transaction rolls back. Only
	// the writer goroutine touches it.
	nextID int64
	// path is the database file; health what reads and writes said of
	// it (see Writable).
	path   string
	health health
}

// OpenSQLite opens (creating if needed) the database at path and brings
// its schema up to date. It refuses a file that is empty or fails
// SQLite's quick_check (ErrCorrupt, naming the file): a new history is
// started only where there is no file at all.
func OpenSQLite(ctx context.Context, path string, opts ...Option) (*SQLite, error) {
	o := options{log: zerolog.Nop()}
	for _, opt := range opts {
		opt(&o)
	}
	return openSQLite(ctx, path, tuning{ckptEvery: checkpointEvery, restartFrames: restartFrames, foldEvery: foldEvery}, o.log)
}

// Option changes how OpenSQLite opens the store.
type Option func(*options)

type options struct{ log zerolog.Logger }

// WithLog is where the store reports what it finds wrong with its files
// at open (a damaged join log record, for one). It logs nothing else.
func WithLog(log zerolog.Logger) Option { return func(o *options) { o.log = log } }

// tuning is when the store does its background work: the constants
// named after its fields, other values in tests.
type tuning struct {
	ckptEvery     time.Duration
	restartFrames int
	foldEvery     time.Duration
}

func openSQLite(ctx context.Context, path string, tune tuning, log zerolog.Logger) (*SQLite, error) {
	if err := checkFile(ctx, path); err != nil {
		return nil, err
	}
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
	s := &SQLite{write: write, tune: tune, path: path}
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
	if s.getJob, err = read.PrepareContext(ctx, "SELECT status, data FROM jobs WHERE id = ?"); err == nil {
		s.findDelivery, err = read.PrepareContext(ctx, findDelivery)
	}
	var folded uint64
	if err == nil {
		err = conn.QueryRowContext(ctx, "SELECT folded FROM join_log").Scan(&folded)
	}
	if err == nil {
		s.joins, err = openJoinLog(path+"-joins", folded, log)
	}
	if err != nil {
		conn.Close()
		read.Close()
		write.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.w = newWriter(conn, writerHooks{
		begin: s.fold,
		committed: func() {
			s.joins.committed()
			s.health.committed()
		},
		rolledBack: func() { s.nextID = 0 },
		failed:     s.health.note,
	})
	// Pushes a stopped process left in the join log go in before
	// anything else is written; then what Join and Delivery keep in
	// memory is read.
	if s.joins.pending() {
		err = s.foldAll(ctx)
	}
	if err == nil {
		err = s.remember(ctx)
	}
	if err != nil {
		s.w.close()
		s.joins.close()
		conn.Close()
		read.Close()
		write.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.stopFolder, s.folderDone = make(chan struct{}), make(chan struct{})
	go s.folder()
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

// remember reads which jobs are queued and which deliveries arrived in
// the last recentFor, for Join and Delivery.
func (s *SQLite) remember(ctx context.Context) error {
	s.recent = newRecent(time.Now())
	rows, err := s.read.QueryContext(ctx, "SELECT provider, id, received FROM deliveries WHERE received >= ?", s.recent.from)
	if err != nil {
		return fmt.Errorf("read recent deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var provider, id string
		var at int64
		if err := rows.Scan(&provider, &id, &at); err != nil {
			return fmt.Errorf("read recent deliveries: %w", err)
		}
		s.recent.add(provider, id, at)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read recent deliveries: %w", err)
	}
	s.queued = map[int64]bool{}
	ids, err := s.read.QueryContext(ctx, "SELECT id FROM jobs WHERE status = ?", job.Queued)
	if err != nil {
		return fmt.Errorf("read queued jobs: %w", err)
	}
	defer ids.Close()
	for ids.Next() {
		var id int64
		if err := ids.Scan(&id); err != nil {
			return fmt.Errorf("read queued jobs: %w", err)
		}
		s.queued[id] = true
	}
	if err := ids.Err(); err != nil {
		return fmt.Errorf("read queued jobs: %w", err)
	}
	return nil
}

// setQueued notes whether job id is queued, and returns whether it was.
func (s *SQLite) setQueued(id int64, status job.Status) bool {
	s.queuedMu.Lock()
	defer s.queuedMu.Unlock()
	was := s.queued[id]
	if status == job.Queued {
		s.queued[id] = true
	} else {
		delete(s.queued, id)
	}
	return was
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
// finished by the writer itself (see checkpoint): 4,096 pages, 4 MiB.
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
	tick := time.NewTicker(s.tune.ckptEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.stopCkpt:
			return
		case <-tick.C:
			// A failed checkpoint is retried at the next tick; the WAL
			// only grows meanwhile.
			var busy, frames, copied int
			if err := s.ckpt.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil || frames < s.tune.restartFrames {
				continue
			}
			s.w.between(context.Background(), func(conn *sql.Conn) error {
				_, err := conn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
				return err
			})
		}
	}
}

// Close commits the writes already handed in, folds the join log, and
// closes the database.
func (s *SQLite) Close() error {
	var ckptErr, foldErr error
	s.closeOnce.Do(func() {
		close(s.stopFolder)
		if s.stopCkpt != nil {
			close(s.stopCkpt)
		}
	})
	<-s.folderDone
	if s.ckpt != nil {
		<-s.ckptDone
		ckptErr = s.ckpt.Close()
	}
	if s.joins.pending() {
		foldErr = s.foldAll(context.Background())
	}
	s.w.close()
	foldErr = errors.Join(foldErr, s.joins.close())
	s.w.conn.Close()
	s.getJob.Close()
	s.findDelivery.Close()
	return errors.Join(ckptErr, foldErr, s.read.Close(), s.write.Close())
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
			if seen, err = s.record(tx, d, id); err != nil || seen != nil {
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
	s.setQueued(id, j.Status)
	return nil
}

// Join saves queued build j, which a push joined, and remembers d as
// having started it; a redelivery (d seen since d.Since) writes nothing
// and returns *job.RedeliveryError. It fails with ErrNotFound when j is
// not queued: a push must never join a build that has started.
//
// Both are appended to the join log (see joinLog) rather than committed:
// Join returns once they are in the log's file, and reads of the store
// see them from then on. The caller keeps j from starting while Join
// runs, and hands in one copy of a delivery at a time (the runner and
// the hook handler do both), so checking d before the append suffices.
func (s *SQLite) Join(ctx context.Context, j *job.Job, d *job.Delivery) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("join job %d: %w", j.ID, err)
	}
	r := &joined{job: j.ID, data: data}
	var since time.Time
	if d != nil {
		r.provider, r.id, r.at, since = d.Provider, d.ID, d.At.UnixMilli(), d.Since
		r.jobs = started(d, j.ID)
	}
	for {
		// The log first, then the database: a fold moves a push from
		// one to the other only once it has committed.
		seen, commits := s.joins.delivery(r.provider, r.id, since)
		if seen == nil && d != nil && s.recent.maybeSeen(r.provider, r.id, since) {
			if seen, err = delivery(s.findDelivery.QueryRowContext(ctx, r.provider, r.id, since.UnixMilli()), r.provider, r.id); err != nil {
				return fmt.Errorf("join job %d: %w", j.ID, s.health.note(err))
			}
		}
		if seen == nil {
			s.queuedMu.Lock()
			queued := s.queued[j.ID]
			s.queuedMu.Unlock()
			if !queued {
				return fmt.Errorf("join job %d: no queued job: %w", j.ID, ErrNotFound)
			}
			if d != nil {
				// Before the append, so it is there before a fold can
				// take the push out of the log; should the append fail,
				// a later check reads the database for nothing.
				s.recent.add(r.provider, r.id, r.at)
			}
			seen, err = s.joins.append(r, since, commits)
			if errors.Is(err, errFolded) {
				continue
			}
			if err != nil {
				return fmt.Errorf("join job %d: %w", j.ID, s.health.note(err))
			}
		}
		if seen != nil {
			return &job.RedeliveryError{Jobs: seen}
		}
		return nil
	}
}

// foldDelivery records a delivery from the join log, over an older record
// of it: the log's is newer.
const foldDelivery = `INSERT INTO deliveries (provider, id, jobs, received) VALUES (?, ?, ?, ?)
	ON CONFLICT (provider, id) DO UPDATE SET jobs = excluded.jobs, received = excluded.received
	WHERE deliveries.received <= excluded.received`

// fold writes the oldest pushes waiting in the join log, first in
// every write transaction: all of them before the store's own writes, so
// those see them in the database; at most foldMax when the transaction
// is the folder's alone (part). Only the newest record of each job is
// written, and only while the job is still queued (a job that started
// was saved whole, with its pushes, since).
func (s *SQLite) fold(tx *wtx, part bool) error {
	limit := 0
	if part {
		limit = foldMax
	}
	recs := s.joins.take(limit)
	if len(recs) == 0 {
		return nil
	}
	newest := make(map[int64]*joined, 8)
	for _, r := range recs {
		newest[r.job] = r
		if r.provider == "" {
			continue
		}
		if _, err := tx.exec(foldDelivery, r.provider, r.id, encodeJobs(r.jobs), r.at); err != nil {
			return fmt.Errorf("fold join log: delivery %s/%s: %w", r.provider, r.id, err)
		}
	}
	for _, r := range recs {
		if newest[r.job] != r {
			continue
		}
		if _, err := tx.exec("UPDATE jobs SET data = ? WHERE id = ? AND status = ?", r.data, r.job, job.Queued); err != nil {
			return fmt.Errorf("fold join log: job %d: %w", r.job, err)
		}
	}
	if _, err := tx.exec("UPDATE join_log SET folded = ?", recs[len(recs)-1].seq); err != nil {
		return fmt.Errorf("fold join log: %w", err)
	}
	return nil
}

// foldAll folds everything waiting in the join log, in a transaction of
// its own: any write does.
func (s *SQLite) foldAll(ctx context.Context) error {
	return s.w.do(ctx, func(*wtx) error { return nil })
}

// folder folds the join log foldEvery after a push first waits in it,
// or sooner when foldAt wait, and once an hour has recent forget what is
// past the redelivery window, until Close. With nothing waiting it
// sleeps.
//
// It folds what waits foldMax records at a time, foldGap apart: a
// transaction folding hundreds of random-keyed deliveries held the
// writer, and one of the process's two Go Ps, for 4-12 ms, and requests
// arriving meanwhile waited behind it (bench/README.md, Intake). Only
// when foldAt or more wait does it fold them all at once.
func (s *SQLite) folder() {
	defer close(s.folderDone)
	forget := time.NewTicker(time.Hour)
	defer forget.Stop()
	for {
		if !s.joins.pending() {
			select {
			case <-s.stopFolder:
				return
			case now := <-forget.C:
				s.recent.forget(now)
				continue
			case <-s.joins.kick:
			}
		}
		// A kick left from before is no reason to fold early.
		select {
		case <-s.joins.kick:
		default:
		}
		if s.joins.backlog() < foldAt {
			wait := time.NewTimer(s.tune.foldEvery)
			select {
			case <-s.stopFolder:
				wait.Stop()
				return
			case <-wait.C:
			case <-s.joins.kick: // foldAt wait
				wait.Stop()
			}
		}
		left := s.joins.backlog()
		if left >= foldAt {
			// More than a round's worth at any rate seen: fold it all in
			// one go, so the log cannot outgrow what folding keeps up with.
			s.foldAll(context.Background())
			left = 0
		}
		// What waits now; pushes joining meanwhile wait for the next
		// round, so that folding never runs on without a break.
		for ; left > 0; left -= foldMax {
			if err := s.w.step(context.Background()); err != nil {
				break // tried again by the next write or round
			}
			if left <= foldMax {
				break
			}
			select {
			case <-s.stopFolder:
				return
			case <-time.After(foldGap):
			}
		}
		select {
		case now := <-forget.C:
			s.recent.forget(now)
		default:
		}
	}
}

// Save replaces the stored record of an existing job.
func (s *SQLite) Save(ctx context.Context, j *job.Job) error {
	rec := j.Clone() // the caller may change j once Save returns
	// A job leaving the queue stops taking joins before its write, so
	// no push can join it once it has committed; should the write fail,
	// it takes them again.
	was := s.setQueued(rec.ID, rec.Status)
	if err := s.w.do(ctx, func(tx *wtx) error { return save(tx, rec) }); err != nil {
		if was {
			s.setQueued(rec.ID, job.Queued)
		}
		return err
	}
	return nil
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
	// The log before the database: a fold takes a push out of the log
	// only once it has committed.
	joined := s.joins.job(id)
	var status string
	var data []byte
	err := s.getJob.QueryRowContext(ctx, id).Scan(&status, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read job %d: %w", id, s.health.note(err))
	}
	if joined != nil && job.Status(status) == job.Queued {
		data = joined
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
	q := "SELECT id, status, data FROM jobs"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	return s.query(ctx, q, append(args, f.Limit)...)
}

func (s *SQLite) query(ctx context.Context, q string, args ...any) ([]*job.Job, error) {
	joined := s.joins.jobs() // before the database: see Get
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", s.health.note(err))
	}
	defer rows.Close()
	var out []*job.Job
	for rows.Next() {
		var id int64
		var status string
		var data []byte
		if err := rows.Scan(&id, &status, &data); err != nil {
			return nil, fmt.Errorf("list jobs: %w", s.health.note(err))
		}
		if newer, ok := joined[id]; ok && job.Status(status) == job.Queued {
			data = newer
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

// Unfinished returns every job still queued or running, oldest first: at
// start-up these are what a previous process left behind.
func (s *SQLite) Unfinished(ctx context.Context) ([]*job.Job, error) {
	return s.query(ctx, "SELECT id, status, data FROM jobs WHERE status IN (?, ?) ORDER BY id", job.Queued, job.Running)
}

// findDelivery reads the jobs of a delivery seen at or after a time.
const findDelivery = "SELECT jobs FROM deliveries WHERE provider = ? AND id = ? AND received >= ?"

// Delivery returns the jobs a delivery started, if it was seen after since.
func (s *SQLite) Delivery(ctx context.Context, provider, id string, since time.Time) ([]int64, bool, error) {
	// The log first: a fold moves a delivery to the database only once
	// it has committed.
	if jobs, _ := s.joins.delivery(provider, id, since); jobs != nil {
		return jobs, true, nil
	}
	if !s.recent.maybeSeen(provider, id, since) {
		return nil, false, nil
	}
	jobs, err := delivery(s.findDelivery.QueryRowContext(ctx, provider, id, since.UnixMilli()), provider, id)
	return jobs, jobs != nil, s.health.note(err)
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

// started returns the jobs delivery d started: its Earlier ones, then id.
func started(d *job.Delivery, id int64) []int64 {
	return append(append(make([]int64, 0, len(d.Earlier)+1), d.Earlier...), id)
}

// encodeJobs encodes jobs for a delivery's record: [1,2,3].
func encodeJobs(jobs []int64) string {
	raw := make([]byte, 0, 24)
	raw = append(raw, '[')
	for i, j := range jobs {
		if i > 0 {
			raw = append(raw, ',')
		}
		raw = strconv.AppendInt(raw, j, 10)
	}
	return string(append(raw, ']'))
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
func (s *SQLite) record(tx *wtx, d *job.Delivery, id int64) ([]int64, error) {
	raw := encodeJobs(started(d, id))
	res, err := tx.exec(recordDelivery, d.Provider, d.ID, raw, d.At.UnixMilli(), d.Since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("record delivery %s/%s: %w", d.Provider, d.ID, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		// Added before the commit: if it rolls back, a later check
		// reads the database for nothing, no harm done.
		s.recent.add(d.Provider, d.ID, d.At.UnixMilli())
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
