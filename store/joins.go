package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// foldEvery is how long a push that joined a waiting build stays in the
// join log before the writer folds it into the database; foldAt is how
// many waiting pushes make it fold sooner.
const (
	foldEvery = 100 * time.Millisecond
	foldAt    = 512
)

// joinLog keeps the pushes that joined a waiting build (SQLite.Join)
// until the writer folds them into the database.
//
// A push that joins a build changes a few hundred bytes: the build's
// newest commit and push count, and its delivery id. Committed one SQLite
// transaction each, those writes were most of the intake path's cost
// under a burst (bench/README.md, Intake). Instead each is appended to a
// file with one write(2) before the push is answered, so it survives the
// process dying exactly as a commit in synchronous=NORMAL WAL mode does,
// and is kept in memory, where reads of the store see it. At the start of
// its next transaction (within foldEvery) the writer applies every
// waiting push in one go; once that commits, they leave memory and their
// files are deleted. On open, the records a stopped process left are
// folded the same way before anything else is written.
//
// Every record carries a sequence number, and each fold stores the last
// it applied in the database, in the same transaction: a record is
// folded once, even when its file outlives the fold (a failed unlink, a
// file still being appended to), so an old record never overwrites what
// came after it.
//
// Appends go to the newest of numbered files; a fold moves appends on to
// a new file, so older files hold only records it folds.
//
// Every append waits for mu, so the fold holds it only to swap things:
// the records appended since the last fold become the folding
// generation, and a file opened beforehand becomes the one appended to.
type joinLog struct {
	base string // files are base + "." + number

	mu      sync.Mutex
	f       *os.File // appends go here; nil after a failed write or Close
	size    int64    // bytes in f
	num     uint64   // the last file number taken
	seq     uint64   // the last record's sequence number
	old     []string // files before f
	commits uint64   // folds committed: see append
	closed  bool
	buf     []byte
	// cur are the records appended since the last fold began, fold the
	// ones it folds (and, after a rolled back fold, more).
	cur, fold generation

	// foldFiles are the files the fold empties. Writer goroutine only.
	foldFiles []string

	kick chan struct{} // foldAt reached
}

// generation is a run of records, with the newest record of each
// delivery and of each job among them.
type generation struct {
	recs  []*joined
	byDel map[string]*joined
	byJob map[int64]*joined
}

func newGeneration() generation {
	return generation{byDel: map[string]*joined{}, byJob: map[int64]*joined{}}
}

// add keeps r as the generation's newest record.
func (g *generation) add(r *joined) {
	g.recs = append(g.recs, r)
	g.byJob[r.job] = r
	if r.provider != "" {
		g.byDel[deliveryKey(r.provider, r.id)] = r
	}
}

// joined is one push that joined a waiting build: the build's record as
// it now stands, and the delivery that brought the push.
type joined struct {
	seq  uint64
	job  int64
	data []byte // the job's JSON
	// provider and id name the delivery, empty without one; jobs are
	// the jobs it started (its Earlier ones, then job), at its arrival
	// in Unix milliseconds.
	provider, id string
	jobs         []int64
	at           int64
}

func deliveryKey(provider, id string) string { return provider + "\x00" + id }

// errJoinLogClosed is what an append after close gets.
var errJoinLogClosed = errors.New("store: join log closed")

// openJoinLog reads the records earlier processes left in base's files
// after folded, the last one the database holds, as the pushes to fold
// first, and deletes the files that hold none.
func openJoinLog(base string, folded uint64) (*joinLog, error) {
	l := &joinLog{base: base, seq: folded, cur: newGeneration(), fold: newGeneration(), kick: make(chan struct{}, 1)}
	names, err := filepath.Glob(base + ".*")
	if err != nil {
		return nil, fmt.Errorf("list join logs: %w", err)
	}
	var recs []*joined
	for _, name := range names {
		num, err := strconv.ParseUint(strings.TrimPrefix(name, base+"."), 10, 64)
		if err != nil {
			continue // not one of ours
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read join log: %w", err)
		}
		l.num = max(l.num, num)
		// A record cut short is the one being written when the process
		// died: its push was never answered, so it is dropped.
		kept := false
		for _, r := range decodeJoins(data) {
			l.seq = max(l.seq, r.seq)
			if r.seq > folded {
				recs = append(recs, r)
				kept = true
			}
		}
		if !kept {
			// All in the database already, or nothing whole.
			os.Remove(name)
			continue
		}
		l.old = append(l.old, name)
	}
	// Files are taken in order but may be written out of it (see take):
	// the sequence numbers say which record came first.
	sort.Slice(recs, func(i, k int) bool { return recs[i].seq < recs[k].seq })
	for _, r := range recs {
		l.cur.add(r)
	}
	if err := l.rotate(); err != nil {
		return nil, err
	}
	return l, nil
}

// name returns the name of file number num.
func (l *joinLog) name(num uint64) string { return fmt.Sprintf("%s.%d", l.base, num) }

// create makes a new file for appends.
func create(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open join log: %w", err)
	}
	return f, nil
}

// rotate moves appends on to a new file. l.mu is held, or l is not shared
// yet.
func (l *joinLog) rotate() error {
	l.num++
	f, err := create(l.name(l.num))
	if err != nil {
		return err
	}
	if l.f != nil {
		l.old = append(l.old, l.f.Name())
		l.f.Close()
	}
	l.f, l.size = f, 0
	return nil
}

// waiting returns the newest waiting record of a delivery, or nil. l.mu
// is held.
func (l *joinLog) waiting(key string) *joined {
	if r, ok := l.cur.byDel[key]; ok {
		return r
	}
	return l.fold.byDel[key]
}

// delivery returns the jobs a waiting push's delivery started, if it
// arrived at or after since, and how many folds had committed when it
// looked.
func (l *joinLog) delivery(provider, id string, since time.Time) ([]int64, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.waiting(deliveryKey(provider, id)); r != nil && r.at >= since.UnixMilli() {
		return append([]int64(nil), r.jobs...), l.commits
	}
	return nil, l.commits
}

// jobs returns the newest record each waiting push wrote of its job, by
// job ID.
func (l *joinLog) jobs() map[int64][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[int64][]byte, len(l.cur.byJob)+len(l.fold.byJob))
	for _, g := range []generation{l.fold, l.cur} { // the newer last
		for id, r := range g.byJob {
			out[id] = r.data
		}
	}
	return out
}

// job returns the newest record of job id a waiting push wrote, or nil.
func (l *joinLog) job(id int64) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, ok := l.cur.byJob[id]; ok {
		return r.data
	}
	if r, ok := l.fold.byJob[id]; ok {
		return r.data
	}
	return nil
}

// errFolded means a fold committed since the caller looked up the
// delivery in the database, so it must look again.
var errFolded = errors.New("store: join log folded meanwhile")

// append numbers r, writes it to the log and keeps it, unless its
// delivery is waiting already (then it returns that delivery's jobs) or
// a fold committed after commits (errFolded: what the caller read from
// the database may miss that fold's deliveries).
func (l *joinLog) append(r *joined, since time.Time, commits uint64) ([]int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errJoinLogClosed
	}
	if r.provider != "" {
		if w := l.waiting(deliveryKey(r.provider, r.id)); w != nil && w.at >= since.UnixMilli() {
			return append([]int64(nil), w.jobs...), nil
		}
		if l.commits != commits {
			return nil, errFolded
		}
	}
	if l.f == nil {
		if err := l.rotate(); err != nil {
			return nil, fmt.Errorf("append to join log: %w", err)
		}
	}
	r.seq = l.seq + 1
	l.buf = encodeJoin(l.buf[:0], r)
	if n, err := l.f.Write(l.buf); err != nil {
		// Nothing may follow a record cut short: the next open stops
		// there. Cut it off, or failing that leave the file.
		if n > 0 {
			if terr := l.f.Truncate(l.size); terr != nil {
				l.old = append(l.old, l.f.Name())
				l.f.Close()
				l.f = nil
			}
		}
		return nil, fmt.Errorf("append to join log: %w", err)
	}
	l.size += int64(len(l.buf))
	l.seq = r.seq
	l.cur.add(r)
	if len(l.cur.recs) == foldAt {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	return nil, nil
}

// take returns the pushes to fold in the writer's transaction and moves
// appends on to a new file. Writer goroutine only.
func (l *joinLog) take() []*joined {
	// A new file is opened before the lock is taken, since creating one
	// can take a while and every append waits for the lock. Should none
	// open, the fold goes on: the file it leaves is deleted by a later
	// one, and its folded records are skipped by their sequence numbers
	// meanwhile.
	l.mu.Lock()
	if len(l.cur.recs)+len(l.fold.recs) == 0 {
		l.mu.Unlock()
		return nil // most writes, when no push joined a build lately
	}
	var num uint64
	if len(l.cur.recs) > 0 && l.f != nil && l.size > 0 {
		l.num++
		num = l.num
	}
	l.mu.Unlock()
	var next *os.File
	if num > 0 {
		next, _ = create(l.name(num))
	}

	l.mu.Lock()
	var prev *os.File
	if next != nil {
		if l.f != nil && !l.closed {
			prev = l.f
			l.old = append(l.old, prev.Name())
			l.f, l.size = next, 0
		} else {
			prev = next // closed meanwhile, or a failed write dropped f
		}
	}
	switch {
	case len(l.fold.recs) == 0:
		l.fold, l.cur = l.cur, newGeneration()
	case len(l.cur.recs) > 0:
		// The last fold rolled back: this one takes its records too.
		for _, r := range l.cur.recs {
			l.fold.add(r)
		}
		l.cur = newGeneration()
	}
	l.foldFiles = append(l.foldFiles[:0], l.old...)
	recs := l.fold.recs
	l.mu.Unlock()
	if prev != nil {
		prev.Close()
		if prev == next {
			os.Remove(prev.Name())
		}
	}
	return recs
}

// committed drops the pushes the committed transaction folded, and the
// files that held them. Writer goroutine only.
func (l *joinLog) committed() {
	l.mu.Lock()
	if len(l.fold.recs) == 0 {
		l.mu.Unlock()
		return
	}
	l.fold = newGeneration()
	l.old = l.old[len(l.foldFiles):]
	l.commits++
	l.mu.Unlock()
	for _, name := range l.foldFiles {
		// One left behind holds only folded records: the next open
		// skips them and deletes it.
		os.Remove(name)
	}
}

// pending reports whether pushes wait to be folded.
func (l *joinLog) pending() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cur.recs)+len(l.fold.recs) > 0
}

// close stops appends, and deletes the files if nothing in them waits.
func (l *joinLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	if len(l.cur.recs)+len(l.fold.recs) == 0 {
		for _, name := range append(l.old, l.f.Name()) {
			err = errors.Join(err, os.Remove(name))
		}
		l.old = nil
	}
	l.f = nil
	return err
}

// A record is its payload's length and CRC-32C, four bytes each, little
// endian, then the payload: uvarints seq, job, len(provider), provider,
// len(id), id, at (zigzag varint), len(jobs), each job, and the job's
// JSON to the end.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeJoin(b []byte, r *joined) []byte {
	start := len(b)
	b = append(b, make([]byte, 8)...)
	b = binary.AppendUvarint(b, r.seq)
	b = binary.AppendUvarint(b, uint64(r.job))
	b = binary.AppendUvarint(b, uint64(len(r.provider)))
	b = append(b, r.provider...)
	b = binary.AppendUvarint(b, uint64(len(r.id)))
	b = append(b, r.id...)
	b = binary.AppendVarint(b, r.at)
	b = binary.AppendUvarint(b, uint64(len(r.jobs)))
	for _, j := range r.jobs {
		b = binary.AppendUvarint(b, uint64(j))
	}
	b = append(b, r.data...)
	payload := b[start+8:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b
}

// decodeJoins returns the whole records at the start of b, stopping at
// the first one that is cut short or damaged.
func decodeJoins(b []byte) []*joined {
	var out []*joined
	for len(b) >= 8 {
		n := binary.LittleEndian.Uint32(b[0:])
		if uint64(n) > uint64(len(b)-8) {
			break
		}
		payload := b[8 : 8+n]
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
			break
		}
		r, ok := decodeJoin(payload)
		if !ok {
			break
		}
		out = append(out, r)
		b = b[8+n:]
	}
	return out
}

func decodeJoin(p []byte) (*joined, bool) {
	var r joined
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	str := func() (string, bool) {
		n, ok := next()
		if !ok || n > uint64(len(p)) {
			return "", false
		}
		s := string(p[:n])
		p = p[n:]
		return s, true
	}
	var ok bool
	if r.seq, ok = next(); !ok {
		return nil, false
	}
	id, ok := next()
	if !ok {
		return nil, false
	}
	r.job = int64(id)
	if r.provider, ok = str(); !ok {
		return nil, false
	}
	if r.id, ok = str(); !ok {
		return nil, false
	}
	at, n := binary.Varint(p)
	if n <= 0 {
		return nil, false
	}
	r.at, p = at, p[n:]
	count, ok := next()
	if !ok || count > uint64(len(p)) {
		return nil, false
	}
	for range count {
		j, ok := next()
		if !ok {
			return nil, false
		}
		r.jobs = append(r.jobs, int64(j))
	}
	r.data = append([]byte(nil), p...)
	return &r, true
}
