package prune

import (
	"context"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/updater"
)

func TestScheduleRunsAndStops(t *testing.T) {
	reg, cfg := world()
	st := &fakeStore{}
	p := newPruner(cfg, reg, &fakeSwarm{inUse: [][]updater.InUse{nil}}, st, &fakeLogs{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Schedule(ctx, "@every 100ms") }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st.mu.Lock()
		n := len(st.jobs)
		var first job.Job
		if n > 0 {
			first = *st.jobs[0]
		}
		st.mu.Unlock()
		if n > 0 && first.Status.Final() {
			if first.Trigger != job.TriggerSchedule || first.Status != job.Succeeded {
				t.Errorf("scheduled job = %+v", first)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no scheduled prune ran within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestScheduleRejectsBadSpec(t *testing.T) {
	reg, cfg := world()
	p := newPruner(cfg, reg, &fakeSwarm{inUse: [][]updater.InUse{nil}}, &fakeStore{}, &fakeLogs{})
	if err := p.Schedule(context.Background(), "every day"); err == nil {
		t.Error("bad schedule accepted")
	}
}
