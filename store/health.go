package store

import (
	"context"
	"fmt"
)

// Writable reports whether the store can take writes now: it takes
// SQLite's write lock in a transaction that it then rolls back, so a
// read-only file, a locked database or a closed store shows up as an
// error while nothing is changed.
func (s *SQLite) Writable(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: get connection: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("store: take write lock: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		return fmt.Errorf("store: release write lock: %w", err)
	}
	return nil
}
