// Package keylock provides per-key mutual exclusion: work on one key
// (a service, a repository, a delivery) waits its turn while other keys
// go ahead.
package keylock

import "sync"

// Set holds one lock per key in use. Its memory holds only keys that are
// locked or waited for. The zero value is ready; a Set must not be copied.
type Set struct {
	mu   sync.Mutex
	keys map[string]*entry
}

type entry struct {
	mu    sync.Mutex
	users int
}

// Lock takes the lock for key, waiting if needed, and returns its unlock.
func (s *Set) Lock(key string) (unlock func()) {
	s.mu.Lock()
	if s.keys == nil {
		s.keys = map[string]*entry{}
	}
	e, ok := s.keys[key]
	if !ok {
		e = &entry{}
		s.keys[key] = e
	}
	e.users++
	s.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		s.mu.Lock()
		if e.users--; e.users == 0 {
			delete(s.keys, key)
		}
		s.mu.Unlock()
	}
}
