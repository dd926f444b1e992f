package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/swarmhook/swarmhook/job"
)

// ErrNotFound means no job has that ID.
var ErrNotFound = errors.New("store: job not found")

// Memory keeps jobs in memory. It is safe for concurrent use and hands out
// copies, never its own records.
type Memory struct {
	mu      sync.Mutex
	jobs    map[int64]*job.Job
	nextID  int64
	numbers map[string]int64
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{jobs: map[int64]*job.Job{}, numbers: map[string]int64{}}
}

// Create stores j and sets its ID and per-project build number.
func (m *Memory) Create(_ context.Context, j *job.Job) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextID++
	m.numbers[j.Project]++
	j.ID, j.Number = m.nextID, m.numbers[j.Project]
	m.jobs[j.ID] = j.Clone()
	return nil
}

// Save replaces the record of an existing job.
func (m *Memory) Save(_ context.Context, j *job.Job) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.jobs[j.ID]; !ok {
		return fmt.Errorf("save job %d: %w", j.ID, ErrNotFound)
	}
	m.jobs[j.ID] = j.Clone()
	return nil
}

// Get returns a copy of job id.
func (m *Memory) Get(_ context.Context, id int64) (*job.Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return nil, fmt.Errorf("job %d: %w", id, ErrNotFound)
	}
	return j.Clone(), nil
}
