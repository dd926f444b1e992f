package job

import (
	"context"
	"testing"
	"testing/synctest"
)

func TestQueueDepthCountsWaitingBuilds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec, r, _ := holdMain(t, 1) // main's first build runs
		ctx := context.Background()
		defer func() { close(rec.gate); r.Shutdown(ctx) }()

		submit := func(branch, commit string) int64 {
			j, err := r.Submit(ctx, Request{Project: "shop", Ref: "refs/heads/" + branch, Branch: branch, Commit: commit})
			if err != nil {
				t.Fatal(err)
			}
			return j.ID
		}
		if got := r.QueueDepth(); got != 0 {
			t.Errorf("depth %d with one build running, want 0", got)
		}
		submit("main", "c2")
		submit("main", "c3") // joins the build of c2: still one waiting on main
		if got := r.QueueDepth(); got != 1 {
			t.Errorf("depth %d, want 1 (one build waits, now at c3)", got)
		}
		submit("dev", "d1") // the only worker is busy
		if got := r.QueueDepth(); got != 2 {
			t.Errorf("depth %d, want 2", got)
		}
	})
}
