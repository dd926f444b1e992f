// Package store keeps swarmhook's history: job records, webhook delivery
// ids and job logs.
//
// Records live in an embedded SQLite database (the pure-Go
// modernc.org/sqlite driver, so there is no server to run and no cgo) in
// the data directory, in WAL mode so a crash never leaves it unreadable,
// with synchronous=NORMAL: a commit survives the process crashing, only a
// power loss or kernel crash can take the last commits. Every write is
// one immediate transaction on the one write connection, committed
// before the call returns; reads use their own connections and never
// wait for it. SQLite checkpoints the WAL on its own.
// The schema is created and upgraded by numbered migrations at open,
// after SQLite's quick_check: an empty or damaged file is refused, not
// replaced. Errors that are the data directory's fault (full, failing,
// damaged) carry ErrFull, ErrIO or ErrCorrupt, and Writable reports them
// for readiness. Each job's log is a plain file beside it, readable while
// the job still writes it.
package store
