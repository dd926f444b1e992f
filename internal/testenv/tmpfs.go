package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Tmpfs mounts a file system of size bytes on a new temporary directory
// and returns the directory: see MountTmpfs.
func Tmpfs(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	MountTmpfs(t, dir, size)
	return dir
}

// MountTmpfs mounts a file system of size bytes on dir, an existing
// directory, until the test ends. A test fills it to see what a full
// disk does. Mounting needs root: without it the test is skipped, or
// fails when CI=true.
func MountTmpfs(t testing.TB, dir string, size int64) {
	t.Helper()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		msg := fmt.Sprintf("mount a tmpfs on %s (needs root): %v", dir, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// Registered after whatever made dir, so run before its removal;
	// detached, so files still open do not stop it.
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}

// Fill writes a file in dir until its file system has no room left, and
// returns a func that removes the file again.
func Fill(t testing.TB, dir string) (free func()) {
	t.Helper()
	f, err := os.CreateTemp(dir, "filler-")
	if err != nil {
		t.Fatalf("fill %s: %v", dir, err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for len(chunk) > 0 {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			chunk = chunk[:len(chunk)/2] // the last few pages
		}
	}
	name := filepath.Clean(f.Name())
	return func() {
		if err := os.Remove(name); err != nil {
			t.Errorf("free %s: %v", dir, err)
		}
	}
}
