package server

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits on failed signature checks from one address. A host with a
// wrong secret retries a handful of times and a person fixing one tries
// a few more, so ten failures pass; after that one more every six
// seconds, which makes guessing a secret hopeless and keeps a flood of
// forged deliveries from costing an HMAC each.
const (
	failureBurst  = 10
	failureRefill = 6 * time.Second
	// maxTrackedAddrs bounds the limiter's memory (a few hundred bytes
	// an address).
	maxTrackedAddrs = 10000
)

// failureLimiter counts failed signature checks per remote address and
// refuses an address that has used up its budget. It is safe for
// concurrent use; its memory is bounded by maxTrackedAddrs.
type failureLimiter struct {
	now func() time.Time

	mu     sync.Mutex
	byAddr map[string]*rate.Limiter
}

func newFailureLimiter(now func() time.Time) *failureLimiter {
	return &failureLimiter{now: now, byAddr: map[string]*rate.Limiter{}}
}

// allow reports whether addr may still try.
func (f *failureLimiter) allow(addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.byAddr[addr]
	return !ok || l.TokensAt(f.now()) >= 1
}

// fail records one failed check from addr.
func (f *failureLimiter) fail(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	l, ok := f.byAddr[addr]
	if !ok {
		if len(f.byAddr) >= maxTrackedAddrs {
			f.evict(now)
		}
		l = rate.NewLimiter(rate.Every(failureRefill), failureBurst)
		f.byAddr[addr] = l
	}
	l.AllowN(now, 1)
}

// evict forgets addresses whose budget has refilled, which lose nothing
// by it, and when none has, one chosen at random, so the map never grows
// past its bound.
func (f *failureLimiter) evict(now time.Time) {
	for a, l := range f.byAddr {
		if l.TokensAt(now) >= failureBurst {
			delete(f.byAddr, a)
		}
	}
	for a := range f.byAddr {
		if len(f.byAddr) < maxTrackedAddrs {
			break
		}
		delete(f.byAddr, a)
	}
}

// remoteHost is the address the connection comes from. Forwarding
// headers are not trusted: anyone can set them, and a limiter keyed on
// them could be sidestepped by changing one per request.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
