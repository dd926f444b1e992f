package store

import (
	"hash/maphash"
	"sync"
	"time"
)

// recentFor is how far back recent remembers deliveries: a day, the
// redelivery window hosts need, and an hour to spare.
const recentFor = 25 * time.Hour

// recentMax caps how many deliveries recent remembers, about 10 MiB.
// Past it recent forgets them all and answers "maybe" until recentFor has
// passed: the store then reads the database for every delivery, as it
// would without recent.
const recentMax = 1 << 18

// recent remembers which deliveries were recorded lately, as 64-bit
// fingerprints of their keys, so that a delivery never seen before, the
// common case, is known to be new without a database read. A
// fingerprint that matches may be another delivery's: "maybe" means read
// the database.
type recent struct {
	seed maphash.Seed

	mu sync.Mutex
	at map[uint64]int64 // fingerprint: newest arrival, Unix ms
	// from: every delivery recorded from then on (Unix ms) is in at.
	from int64
}

func newRecent(now time.Time) *recent {
	return &recent{seed: maphash.MakeSeed(), at: map[uint64]int64{}, from: now.Add(-recentFor).UnixMilli()}
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
	at, ok := r.at[fp]
	return ok && at >= since.UnixMilli()
}

// add remembers that delivery id of provider was recorded as arriving at
// (Unix ms). Call it before the record can be read, and before another
// copy of the delivery can be checked.
func (r *recent) add(provider, id string, at int64) {
	fp := r.fingerprint(provider, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.at) >= recentMax {
		r.at = map[uint64]int64{}
		r.from = time.Now().UnixMilli()
	}
	if at > r.at[fp] {
		r.at[fp] = at
	}
}

// forget drops what arrived more than recentFor before now.
func (r *recent) forget(now time.Time) {
	cutoff := now.Add(-recentFor).UnixMilli()
	r.mu.Lock()
	defer r.mu.Unlock()
	for fp, at := range r.at {
		if at < cutoff {
			delete(r.at, fp)
		}
	}
	r.from = max(r.from, cutoff)
}
