package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LogDir keeps one log file per job in a directory.
type LogDir struct{ dir string }

// NewLogDir keeps logs in dir, creating it if needed.
func NewLogDir(dir string) (*LogDir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	return &LogDir{dir: dir}, nil
}

func (l *LogDir) path(id int64) string {
	return filepath.Join(l.dir, strconv.FormatInt(id, 10)+".log")
}

// Create opens job id's log for appending.
func (l *LogDir) Create(id int64) (io.WriteCloser, error) {
	f, err := os.OpenFile(l.path(id), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log of job %d: %w", id, err)
	}
	return f, nil
}

// Open returns job id's log for reading; a job that has not written yet
// has an empty log.
func (l *LogDir) Open(id int64) (io.ReadCloser, error) {
	f, err := os.Open(l.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return io.NopCloser(strings.NewReader("")), nil
	}
	if err != nil {
		return nil, fmt.Errorf("open log of job %d: %w", id, err)
	}
	return f, nil
}

// Remove deletes job id's log.
func (l *LogDir) Remove(id int64) error {
	err := os.Remove(l.path(id))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove log of job %d: %w", id, err)
	}
	return nil
}
