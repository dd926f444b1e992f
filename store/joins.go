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

	"github.com/rs/zerolog"
)

// foldEvery is about how long a push that joined a waiting build stays
// in the join log before the writer folds it into the database: the
// folder starts a round that long after a push finds the log empty, or
// after its last round if pushes wait; foldAt is how many waiting pushes
// make it fold sooner. The folder folds at most
// foldMax records per transaction, foldGap apart (see SQLite.folder).
// Appends move on to a new file once one holds rotateAt bytes.
const (
	foldEvery = 10 * time.Millisecond
	foldAt    = 512
	foldMax   = 64
	foldGap   = 2 * time.Millisecond
	rotateAt  = 1 << 20
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
// and is kept in memory, where reads of the store see it. The writer
// folds the oldest waiting records in at the start of a transaction:
// all of them before any write of the store's, a part at a time in the
// folder's own transactions. Once a fold commits, its records leave
// memory, and a file whose every record is folded is deleted. On open,
// the records a stopped process left are folded the same way before
// anything else is written.
//
// Every record carries a sequence number, and each fold stores the last
// it applied in the database, in the same transaction: a record is
// folded once, even when its file outlives the fold (a failed unlink, a
// file still being appended to), so an old record never overwrites what
// came after it.
//
// Appends go to the newest of numbered files, and move on to a new one
// once it holds rotateAt bytes. Every append waits for mu, so the writer
// holds it only to hand records over, and opens files without it.
type joinLog struct {
	base     string // files are base + "." + number
	rotateAt int64

	mu      sync.Mutex
	f       *os.File // appends go here; nil after a failed write or Close
	size    int64    // bytes in f
	num     uint64   // the last file number taken
	seq     uint64   // the last record's sequence number
	old     []logFile
	commits uint64 // folds committed: see append
	closed  bool
	buf     []byte
	// waits are the records not folded yet, oldest first; byDel and
	// byJob hold the newest of each delivery and each job among them.
	waits []*joined
	byDel map[string]*joined
	byJob map[int64]*joined
	// taken is how many of waits the writer's transaction folds. Writer
	// goroutine only.
	taken int

	kick chan struct{} // a first push waits, or foldAt do
}

// logFile is a file appends have moved on from, and the sequence number
// of the last record it holds: once that is folded, it goes, or, when
// damaged records were found in it at open, is renamed to aside, kept
// for whoever looks into what was lost.
type logFile struct {
	name  string
	last  uint64
	aside string
}

// drop removes f, or sets it aside if it is damaged.
func (f logFile) drop() error {
	if f.aside != "" {
		return os.Rename(f.name, f.aside)
	}
	return os.Remove(f.name)
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
//
// A record that fails its check, anywhere but cut short at the very end
// of a file (the write in progress when a process died, never
// answered), is damage: it is logged as an error with the file, the
// offset and how many acknowledged pushes were lost with it, the records
// after it are read still, and the file is renamed aside rather than
// deleted once what could be read of it is folded.
func openJoinLog(base string, folded uint64, log zerolog.Logger) (*joinLog, error) {
	l := &joinLog{base: base, rotateAt: rotateAt, seq: folded,
		byDel: map[string]*joined{}, byJob: map[int64]*joined{}, kick: make(chan struct{}, 1)}
	names, err := filepath.Glob(base + ".*")
	if err != nil {
		return nil, fmt.Errorf("list join logs: %w", err)
	}
	// In the order they were written: damage is told by the records
	// either side of it, whichever file holds them.
	type file struct {
		name string
		num  uint64
	}
	var files []file
	for _, name := range names {
		num, err := strconv.ParseUint(strings.TrimPrefix(name, base+"."), 10, 64)
		if err != nil {
			continue // not one of ours
		}
		files = append(files, file{name, num})
	}
	sort.Slice(files, func(i, k int) bool { return files[i].num < files[k].num })
	var recs []*joined
	var damage []*damaged
	var prev uint64 // the last whole record's sequence number so far
	at := time.Now().UTC().Format("20060102T150405Z")
	for _, f := range files {
		data, err := os.ReadFile(f.name)
		if err != nil {
			return nil, fmt.Errorf("read join log: %w", err)
		}
		l.num = max(l.num, f.num)
		// A record cut short is the one being written when the process
		// died: its push was never answered, so it is dropped.
		found, bad := decodeJoins(data)
		if len(found) > 0 {
			// Damage an earlier file ends with is told by what this
			// one starts with.
			for _, d := range damage {
				if d.next == 0 {
					d.next = found[0].seq
				}
			}
		}
		for _, d := range bad {
			d.file = f.name
			if d.prev == 0 {
				d.prev = prev
			}
			damage = append(damage, d)
		}
		var last uint64
		for _, r := range found {
			l.seq = max(l.seq, r.seq)
			last = max(last, r.seq)
			prev = max(prev, r.seq)
			if r.seq > folded {
				recs = append(recs, r)
			}
		}
		lf := logFile{name: f.name, last: last}
		if len(bad) > 0 {
			lf.aside = asideName(f.name, at)
		}
		if last <= folded {
			// All in the database already, or nothing whole.
			if err := lf.drop(); err != nil && lf.aside != "" {
				return nil, fmt.Errorf("set damaged join log aside: %w", err)
			}
			continue
		}
		l.old = append(l.old, lf)
	}
	for _, d := range damage {
		d.report(log, folded, at)
	}
	// The sequence numbers say which record came first, whichever file
	// holds it.
	sort.Slice(recs, func(i, k int) bool { return recs[i].seq < recs[k].seq })
	for _, r := range recs {
		l.add(r)
	}
	if err := l.rotate(); err != nil {
		return nil, err
	}
	return l, nil
}

// asideName is where a damaged join log file is kept, renamed at open
// time at (see openJoinLog).
func asideName(name, at string) string { return name + ".damaged-" + at }

// damaged is a stretch of a join log file that holds no whole record.
type damaged struct {
	file   string
	off, n int
	// prev and next are the sequence numbers of the whole records
	// before and after it, in any file; 0 when there is none.
	prev, next uint64
}

// report logs d as an error: where it is, and how many pushes not yet
// in the database (after folded) it held.
func (d *damaged) report(log zerolog.Logger, folded uint64, at string) {
	e := log.Error().Str("file", d.file).Int("offset", d.off).Int("bytes", d.n).
		Str("kept_as", asideName(d.file, at))
	from := max(d.prev, folded)
	if d.next == 0 {
		// Nothing whole after it: how many it held is not known.
		e.Int("records_lost", 1).Bool("records_lost_at_least", true)
	} else {
		lost := 0
		if d.next > from+1 {
			lost = int(d.next - from - 1)
		}
		e.Int("records_lost", lost)
	}
	e.Msg("damaged join log: acknowledged pushes it held are lost")
}

// add keeps r as the newest waiting record. l.mu is held, or l is not
// shared yet.
func (l *joinLog) add(r *joined) {
	l.waits = append(l.waits, r)
	l.byJob[r.job] = r
	if r.provider != "" {
		l.byDel[deliveryKey(r.provider, r.id)] = r
	}
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
	l.swap(f)
	return nil
}

// swap makes next the file appends go to. l.mu is held.
func (l *joinLog) swap(next *os.File) {
	if l.f != nil {
		l.old = append(l.old, logFile{name: l.f.Name(), last: l.seq})
		l.f.Close()
	}
	l.f, l.size = next, 0
}

// delivery returns the jobs a waiting push's delivery started, if it
// arrived at or after since, and how many folds had committed when it
// looked.
func (l *joinLog) delivery(provider, id string, since time.Time) ([]int64, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.byDel[deliveryKey(provider, id)]; r != nil && r.at >= since.UnixMilli() {
		return append([]int64(nil), r.jobs...), l.commits
	}
	return nil, l.commits
}

// jobs returns the newest record each waiting push wrote of its job, by
// job ID.
func (l *joinLog) jobs() map[int64][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[int64][]byte, len(l.byJob))
	for id, r := range l.byJob {
		out[id] = r.data
	}
	return out
}

// job returns the newest record of job id a waiting push wrote, or nil.
func (l *joinLog) job(id int64) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, ok := l.byJob[id]; ok {
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
		if w := l.byDel[deliveryKey(r.provider, r.id)]; w != nil && w.at >= since.UnixMilli() {
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
				l.swap(nil)
			}
		}
		return nil, fmt.Errorf("append to join log: %w", err)
	}
	l.size += int64(len(l.buf))
	l.seq = r.seq
	l.add(r)
	if len(l.waits) == 1 || len(l.waits) == foldAt {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	return nil, nil
}

// take returns the oldest waiting pushes, at most limit of them (all,
// when limit is 0), to fold in the writer's transaction. Writer goroutine
// only.
func (l *joinLog) take(limit int) []*joined {
	l.mu.Lock()
	n := len(l.waits)
	if limit > 0 {
		n = min(n, limit)
	}
	l.taken = n
	recs := l.waits[:n:n]
	full := l.f != nil && l.size >= l.rotateAt
	var num uint64
	if full {
		l.num++
		num = l.num
	}
	l.mu.Unlock()
	if full {
		// Opened without the lock, since creating a file can take a
		// while and every append waits for it. Should none open, appends
		// stay where they are until the next take.
		next, err := create(l.name(num))
		if err == nil {
			l.mu.Lock()
			if l.f != nil && !l.closed {
				l.swap(next)
				next = nil
			}
			l.mu.Unlock()
			if next != nil { // closed meanwhile, or a failed write dropped f
				next.Close()
				os.Remove(next.Name())
			}
		}
	}
	return recs
}

// committed drops the pushes the committed transaction folded, and the
// files that held only folded ones. Writer goroutine only.
func (l *joinLog) committed() {
	if l.taken == 0 {
		return
	}
	l.mu.Lock()
	done := l.waits[:l.taken]
	for _, r := range done {
		if l.byJob[r.job] == r {
			delete(l.byJob, r.job)
		}
		if r.provider != "" {
			if key := deliveryKey(r.provider, r.id); l.byDel[key] == r {
				delete(l.byDel, key)
			}
		}
	}
	folded := done[len(done)-1].seq
	clear(done) // for the garbage collector
	if l.taken == len(l.waits) && cap(l.waits) > 4*foldAt {
		// Maps never shrink: after a burst, give its memory back.
		l.waits, l.byDel, l.byJob = nil, map[string]*joined{}, map[int64]*joined{}
	} else {
		l.waits = l.waits[l.taken:]
	}
	l.taken = 0
	l.commits++
	var gone []logFile
	kept := l.old[:0]
	for _, f := range l.old {
		if f.last <= folded {
			gone = append(gone, f)
		} else {
			kept = append(kept, f)
		}
	}
	l.old = kept
	l.mu.Unlock()
	for _, f := range gone {
		// One left behind holds only folded records: the next open
		// skips them and deletes it.
		f.drop()
	}
}

// backlog returns how many pushes wait to be folded.
func (l *joinLog) backlog() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.waits)
}

// pending reports whether pushes wait to be folded.
func (l *joinLog) pending() bool { return l.backlog() > 0 }

// close stops appends, and deletes the files if nothing in them waits.
func (l *joinLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	if len(l.waits) == 0 {
		err = errors.Join(err, os.Remove(l.f.Name()))
		for _, f := range l.old {
			err = errors.Join(err, f.drop())
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

// decodeJoins returns the whole records in b, and the stretches between
// them that hold none, with the sequence numbers either side that b
// holds. A record cut short at the end is no damage: it is the write in
// progress when a process died.
func decodeJoins(b []byte) ([]*joined, []*damaged) {
	var out []*joined
	var bad []*damaged
	for off := 0; off < len(b); {
		if r, n := decodeAt(b[off:]); r != nil {
			if k := len(bad); k > 0 && bad[k-1].next == 0 {
				bad[k-1].next = r.seq
			}
			out = append(out, r)
			off += n
			continue
		}
		// The next whole record, if any: damage ends there.
		next := off + 1
		for ; next < len(b); next++ {
			if r, _ := decodeAt(b[next:]); r != nil {
				break
			}
		}
		if next == len(b) && cutShort(b[off:]) {
			break
		}
		d := &damaged{off: off, n: next - off}
		if len(out) > 0 {
			d.prev = out[len(out)-1].seq
		}
		bad = append(bad, d)
		off = next
	}
	return out, bad
}

// decodeAt decodes the record at the start of b, and returns it and its
// length, or nil if there is no whole, sound one.
func decodeAt(b []byte) (*joined, int) {
	if len(b) < 8 {
		return nil, 0
	}
	n := binary.LittleEndian.Uint32(b[0:])
	if uint64(n) > uint64(len(b)-8) {
		return nil, 0
	}
	payload := b[8 : 8+n]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0
	}
	r, ok := decodeJoin(payload)
	if !ok {
		return nil, 0
	}
	return r, 8 + int(n)
}

// maxTorn bounds the length a record cut short may claim. A queued
// job's JSON is a few KiB; a header claiming more than this is damage,
// as garbage in the length almost always does.
const maxTorn = 1 << 20

// cutShort reports whether b is the start of a record whose end is
// missing.
func cutShort(b []byte) bool {
	if len(b) < 8 {
		return true
	}
	n := binary.LittleEndian.Uint32(b[0:])
	return n <= maxTorn && uint64(n) > uint64(len(b)-8)
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
