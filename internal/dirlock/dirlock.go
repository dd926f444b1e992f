package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FileName is the lock file Acquire keeps in the directory. It is never
// removed: removing it would let two processes lock two different files.
const FileName = "swarmhook.lock"

// ErrHeld means another process holds the directory; the error is a
// *HeldError naming it.
var ErrHeld = errors.New("dirlock: directory in use")

// HeldError says which directory is held and by which process.
type HeldError struct {
	// Dir is the directory.
	Dir string
	// PID is the holder's process id, or 0 when the lock file does not
	// (yet) name one.
	PID int
}

func (e *HeldError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("%s is in use by another process", e.Dir)
	}
	return fmt.Sprintf("%s is in use by pid %d", e.Dir, e.PID)
}

// Is makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Lock is a held directory. It is not safe for concurrent use; the usual
// holder takes it once at start-up and keeps it.
type Lock struct {
	f *os.File
}

// Acquire creates dir (mode 0700) if needed and locks it without waiting:
// when another process, or another Lock of this one, holds it, it fails
// at once with a *HeldError.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := openFile(path)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := lockFile(f); err != nil {
		pid := holder(f)
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, &HeldError{Dir: dir, PID: pid}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := writePID(f, os.Getpid()); err != nil {
		f.Close()
		return nil, fmt.Errorf("write pid to %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Release empties the lock file and lets the directory go. Calling it
// again does nothing.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	terr := f.Truncate(0)
	if err := f.Close(); err != nil {
		return fmt.Errorf("release lock: %w", err)
	}
	if terr != nil {
		return fmt.Errorf("empty lock file: %w", terr)
	}
	return nil
}

func writePID(f *os.File, pid int) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0)
	return err
}

// holder reads the PID in the lock file; 0 when there is none.
func holder(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
