package server

import (
	"fmt"
	"sync"
)

// followers counts long-held requests, followed job logs and actions
// with ?wait=1, per API token and in all, and refuses one over either
// cap. It is safe for concurrent use.
type followers struct {
	perToken, total int

	mu      sync.Mutex
	byToken map[string]int
	n       int
}

func newFollowers(perToken, total int) *followers {
	return &followers{perToken: perToken, total: total, byToken: map[string]int{}}
}

// acquire takes a slot for token, or fails with errRateLimited naming
// the cap that is full. The caller calls release when its stream ends.
func (f *followers) acquire(token string) (release func(), err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.byToken[token] >= f.perToken:
		return nil, fmt.Errorf("%w: token %s follows or waits on %d jobs already, the most one token may; close one first", errRateLimited, token, f.perToken)
	case f.n >= f.total:
		return nil, fmt.Errorf("%w: %d jobs are being followed or waited on, the most the server allows; try again later", errRateLimited, f.total)
	}
	f.byToken[token]++
	f.n++
	var once sync.Once
	return func() { once.Do(func() { f.release(token) }) }, nil
}

func (f *followers) release(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.byToken[token]--; f.byToken[token] == 0 {
		delete(f.byToken, token)
	}
}

// count is how many logs are followed now.
func (f *followers) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}
