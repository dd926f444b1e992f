package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// ErrClosed means the store was closed before a write was handed in.
var ErrClosed = errors.New("store: closed")

// maxBatch caps how many writes share one transaction, so one commit
// never holds the writers behind it for long.
const maxBatch = 256

// writer owns the database's one write connection and commits what it is
// handed in batches (group commit): every write waiting when a
// transaction starts goes into it, and each caller hears back once that
// transaction has committed. Concurrent callers so pay for one commit
// between them instead of one each, and never wait for SQLite's write
// lock: writes run one after another on one goroutine, in the order they
// were handed in.
//
// do is safe for concurrent use; close flushes what was handed in before
// it and then stops the goroutine.
type writer struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
	ops   chan *write

	mu     sync.RWMutex // guards closed against sends on a closed ops
	closed bool
	done   chan struct{}

	hooks writerHooks
}

// writerHooks let the store keep state alongside the writer's
// transactions. Each is optional and runs on the writer goroutine.
type writerHooks struct {
	// begin runs first in every transaction: writes of its own that must
	// come before the batch's. Its error fails the batch. part is true
	// when the batch holds nothing but steps (see writer.step): then it
	// may do only part of what waits, to keep the transaction short.
	begin func(tx *wtx, part bool) error
	// committed runs once a transaction has committed.
	committed func()
	// rolledBack runs after a transaction was rolled back, so state
	// cached alongside it can be dropped.
	rolledBack func()
	// failed sees the error a transaction failed with, and returns the
	// error its writes get instead.
	failed func(err error) error
}

// write is one caller's part of a batch, or, when between is set, work
// on the connection between two transactions. A step has no fn.
type write struct {
	fn      func(tx *wtx) error
	between func(conn *sql.Conn) error
	step    bool
	err     chan error
}

// wtx runs statements inside the writer's current transaction. It is
// only valid on the writer goroutine during the write's fn.
type wtx struct{ w *writer }

func newWriter(conn *sql.Conn, hooks writerHooks) *writer {
	w := &writer{conn: conn, stmts: map[string]*sql.Stmt{}, ops: make(chan *write, 4*maxBatch),
		done: make(chan struct{}), hooks: hooks}
	go w.loop()
	return w
}

// do runs fn in a write transaction shared with other callers' writes
// and returns once that transaction has committed (fn's error, or the
// commit's, otherwise). fn may run more than once (it is run again
// alone when another write of its batch fails), so it must set what it
// reports back afresh on every run. ctx is checked before the write is
// handed in; once handed in, the write is waited for, so a caller never
// returns while its fn may still run.
func (w *writer) do(ctx context.Context, fn func(tx *wtx) error) error {
	return w.send(ctx, &write{fn: fn})
}

// step runs a transaction for the begin hook's work alone, and returns
// once it has committed. Unless writes of callers share the transaction,
// the hook is told it may do part of its work (see writerHooks.begin).
func (w *writer) step(ctx context.Context) error {
	return w.send(ctx, &write{step: true})
}

// between runs fn on the write connection outside any transaction, after
// the writes handed in before it have committed and before any handed in
// after it: while fn runs, nothing else writes. ctx is checked before.
func (w *writer) between(ctx context.Context, fn func(conn *sql.Conn) error) error {
	return w.send(ctx, &write{between: fn})
}

// send hands op to the writer goroutine and waits for its result.
func (w *writer) send(ctx context.Context, op *write) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op.err = make(chan error, 1)
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrClosed
	}
	w.ops <- op
	w.mu.RUnlock()
	return <-op.err
}

// close commits every write handed in before it, then stops the writer.
func (w *writer) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.ops)
	}
	w.mu.Unlock()
	<-w.done
	for _, s := range w.stmts {
		s.Close()
	}
}

func (w *writer) loop() {
	defer close(w.done)
	batch := make([]*write, 0, maxBatch)
	for first := range w.ops {
		if first.between != nil {
			first.err <- first.between(w.conn)
			continue
		}
		batch = append(batch[:0], first)
		// Let the requests that are ready to write hand their writes in
		// first: a fuller batch shares one commit among more callers.
		runtime.Gosched()
		var after *write
	fill:
		for len(batch) < maxBatch {
			select {
			case op, ok := <-w.ops:
				if !ok {
					break fill
				}
				if op.between != nil {
					after = op // runs once this batch has committed
					break fill
				}
				batch = append(batch, op)
			default:
				break fill
			}
		}
		w.commit(batch)
		if after != nil {
			after.err <- after.between(w.conn)
		}
	}
}

// commit runs a batch in one transaction. When it fails, each write is
// run again in a transaction of its own, so one bad write fails only its
// own caller.
func (w *writer) commit(batch []*write) {
	err := w.run(batch)
	if err == nil || len(batch) == 1 {
		for _, op := range batch {
			op.err <- err
		}
		return
	}
	for _, op := range batch {
		op.err <- w.run([]*write{op})
	}
}

func (w *writer) run(batch []*write) error {
	err := w.try(batch)
	if err != nil && w.hooks.failed != nil {
		err = w.hooks.failed(err)
	}
	return err
}

// try runs a batch in one transaction, rolled back should any of it fail.
func (w *writer) try(batch []*write) error {
	tx := &wtx{w}
	if _, err := tx.exec("BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	if w.hooks.begin != nil {
		part := true
		for _, op := range batch {
			part = part && op.step
		}
		if err := w.hooks.begin(tx, part); err != nil {
			w.rollback()
			return err
		}
	}
	for _, op := range batch {
		if op.step {
			continue
		}
		if err := op.fn(tx); err != nil {
			w.rollback()
			return err
		}
	}
	if _, err := tx.exec("COMMIT"); err != nil {
		w.rollback()
		return fmt.Errorf("commit: %w", err)
	}
	if w.hooks.committed != nil {
		w.hooks.committed()
	}
	return nil
}

func (w *writer) rollback() {
	// An error here means SQLite already rolled back on its own.
	(&wtx{w}).exec("ROLLBACK")
	if w.hooks.rolledBack != nil {
		w.hooks.rolledBack()
	}
}

// stmt returns q prepared once on the write connection.
func (w *writer) stmt(q string) (*sql.Stmt, error) {
	if s, ok := w.stmts[q]; ok {
		return s, nil
	}
	// Background: a caller's context must not interrupt a shared
	// transaction, and a cancellable one costs a goroutine per statement.
	s, err := w.conn.PrepareContext(context.Background(), q)
	if err != nil {
		return nil, err
	}
	w.stmts[q] = s
	return s, nil
}

func (t *wtx) exec(q string, args ...any) (sql.Result, error) {
	s, err := t.w.stmt(q)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(context.Background(), args...)
}

func (t *wtx) queryRow(q string, args ...any) *sql.Row {
	s, err := t.w.stmt(q)
	if err != nil {
		// Row reports err from Scan.
		return t.w.conn.QueryRowContext(context.Background(), q, args...)
	}
	return s.QueryRowContext(context.Background(), args...)
}

func (t *wtx) query(q string, args ...any) (*sql.Rows, error) {
	s, err := t.w.stmt(q)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(context.Background(), args...)
}
