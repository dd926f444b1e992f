package prune

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/updater"
)

// TestScheduleRunsAndStops: a prune runs each time the schedule comes
// round, and Schedule returns once its context is done. The bubble's
// clock is fake: sleeping moves it on at once.
func TestScheduleRunsAndStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg, cfg := world()
		st := &fakeStore{}
		p := newPruner(cfg, reg, &fakeSwarm{inUse: [][]updater.InUse{nil}}, st, &fakeLogs{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		begin := time.Now()
		go func() { done <- p.Schedule(ctx, "@every 1h") }()

		for _, tt := range []struct {
			at   time.Duration // since Schedule started
			runs int
		}{{0, 0}, {90 * time.Minute, 1}, {150 * time.Minute, 2}} {
			time.Sleep(tt.at - time.Since(begin))
			synctest.Wait() // a run that is due has finished
			st.mu.Lock()
			jobs := slices.Clone(st.jobs)
			st.mu.Unlock()
			if len(jobs) != tt.runs {
				t.Fatalf("after %s: %d prunes, want %d", tt.at, len(jobs), tt.runs)
			}
			for _, j := range jobs {
				if j.Trigger != job.TriggerSchedule || j.Status != job.Succeeded {
					t.Errorf("scheduled job = %+v", j)
				}
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestScheduleRejectsBadSpec(t *testing.T) {
	reg, cfg := world()
	p := newPruner(cfg, reg, &fakeSwarm{inUse: [][]updater.InUse{nil}}, &fakeStore{}, &fakeLogs{})
	if err := p.Schedule(context.Background(), "every day"); err == nil {
		t.Error("bad schedule accepted")
	}
}
