// Package store keeps swarmhook's history: job records, webhook delivery
// ids and job logs.
//
// Records live in an embedded SQLite database (the pure-Go
// modernc.org/sqlite driver, so there is no server to run and no cgo) in
// the data directory, in WAL mode so a crash never leaves it unreadable,
// with synchronous=NORMAL: a commit survives the process crashing, only a
// power loss or kernel crash can take the last commits. All writes go
// through one goroutine that commits concurrent writes together (group
// commit); reads use their own connections and never wait for it. A push
// that joins a build already waiting is the exception: it is appended to
// a join log file beside the database and folded in about 10 ms later,
// or first by any other write (see joinLog), which makes a burst of
// pushes to one branch cheap.
// The schema is created and upgraded by numbered migrations at open,
// after SQLite's quick_check: an empty or damaged file is refused, not
// replaced. Errors that are the data directory's fault (full, failing,
// damaged) carry ErrFull, ErrIO or ErrCorrupt, and Writable reports them
// for readiness. Each
// job's log is a plain file beside it, readable while the job still
// writes it.
package store
