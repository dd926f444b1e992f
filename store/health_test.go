package store

import (
	"context"
	"os"
	"testing"
)

func TestWritable(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if err := s.Writable(ctx); err != nil {
		t.Fatalf("fresh store: %v", err)
	}
	s.Close()
	if err := s.Writable(ctx); err == nil {
		t.Error("a closed store reported writable")
	}

	// A file swarmhook may not write is opened read-only by SQLite; the
	// check must say so.
	if os.Getuid() == 0 {
		t.Log("running as root: file modes do not stop writes, read-only case not checked")
		return
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Writable(ctx); err == nil {
		t.Error("a read-only database reported writable")
	}
}
