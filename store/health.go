package store

import (
	"context"
	"fmt"
)

// Writable reports whether the store can take writes now: it hands the
// writer an empty write, which takes SQLite's write lock (BEGIN
// IMMEDIATE) and commits nothing, so a read-only file, a locked database
// or a closed store shows up as an error while nothing is changed.
func (s *SQLite) Writable(ctx context.Context) error {
	if err := s.w.do(ctx, func(*wtx) error { return nil }); err != nil {
		return fmt.Errorf("store: take write lock: %w", err)
	}
	return nil
}
