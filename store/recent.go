package store

import (
	"hash/maphash"
	"sync"
	"time"
)

// recentFor is how far back recent remembers deliveries: a day, the
// redelivery window hosts need, and an hour to spare.
const recentFor = 25 * time.Hour

// recentMax caps how many deliveries recent remembers, about 10 MiB. It
// keeps them in two generations of up to recentMax/2; when the newer
// fills, the older is forgotten, and a delivery from before the newer
// began is "maybe" seen from then on: the store reads the database for
// it, as it would without recent. Below about 1.5 deliveries a second
// over a day recent forgets nothing inside the redelivery window.
const recentMax = 1 << 18

// recent remembers which deliveries were recorded lately, as 64-bit
// fingerprints of their keys, so that a delivery never seen before, the
// common case, is known to be new without a database read. A
// fingerprint that matches may be another delivery's: "maybe" means read
// the database.
type recent struct {
	seed maphash.Seed

	mu sync.Mutex
	// cur and old map fingerprints to newest arrival (Unix ms); cur was
	// begun at curFrom.
	cur, old map[uint64]int64
	curFrom  int64
	// from: every delivery recorded from then on (Unix ms) is in cur or
	// old.
	from int64
}

func newRecent(now time.Time) *recent {
	from := now.Add(-recentFor).UnixMilli()
	return &recent{seed: maphash.MakeSeed(), cur: map[uint64]int64{}, old: map[uint64]int64{}, curFrom: from, from: from}
}

func (r *recent) fingerprint(provider, id string) uint64 {
	var h maphash.Hash
	h.SetSeed(r.seed)
	h.WriteString(provider)
	h.WriteByte(0)
	h.WriteString(id)
	return h.Sum64()
}

// maybeSeen reports whether delivery id of provider may have been
// recorded as arriving at or after since; false means it certainly was
// not.
func (r *recent) maybeSeen(provider, id string, since time.Time) bool {
	fp := r.fingerprint(provider, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if since.UnixMilli() < r.from {
		return true
	}
	at, ok := r.cur[fp]
	if !ok {
		at, ok = r.old[fp]
	}
	return ok && at >= since.UnixMilli()
}

// add remembers that delivery id of provider was recorded as arriving at
// (Unix ms). Call it before the record can be read, and before another
// copy of the delivery can be checked.
func (r *recent) add(provider, id string, at int64) {
	fp := r.fingerprint(provider, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cur) >= recentMax/2 {
		r.old, r.cur = r.cur, make(map[uint64]int64, len(r.cur))
		r.from, r.curFrom = max(r.from, r.curFrom), time.Now().UnixMilli()
	}
	if at > r.cur[fp] {
		r.cur[fp] = at
	}
}

// forget drops what arrived more than recentFor before now.
func (r *recent) forget(now time.Time) {
	cutoff := now.Add(-recentFor).UnixMilli()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range []map[uint64]int64{r.cur, r.old} {
		for fp, at := range m {
			if at < cutoff {
				delete(m, fp)
			}
		}
	}
	r.from = max(r.from, cutoff)
}
