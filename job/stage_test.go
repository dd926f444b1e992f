package job

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// stageOf returns the "stage" of job id's record as the API shows it,
// or nil when it has none.
func stageOf(t *testing.T, rec *recorder, id int64) map[string]any {
	t.Helper()
	b, err := json.Marshal(rec.job(id))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	st, _ := m["stage"].(map[string]any)
	return st
}

// TestRunningJobNamesItsStage: while a build blocks, the job's record
// names the build stage and when it started; once the job ends, it has
// no current stage.
func TestRunningJobNamesItsStage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		rec.current["worker"] = "reg:5000/shop/api:x@sha256:old"
		rec.gate = make(chan struct{})
		r := newTestRunner(t, rec, 1)
		clock := time.Date(2026, 11, 26, 10, 15, 0, 0, time.UTC)
		r.d.Now = func() time.Time { return clock }
		ctx := context.Background()
		r.Start(ctx)
		var open sync.Once
		release := func() { open.Do(func() { close(rec.gate) }) }
		t.Cleanup(func() { r.Shutdown(ctx) })
		t.Cleanup(release) // runs first: a failed test must not leave the build hanging
		j, err := r.Submit(ctx, Request{Project: "shop", Ref: "refs/heads/main", Branch: "main", Commit: "c0ffee"})
		if err != nil {
			t.Fatal(err)
		}

		// The build waits at the gate.
		synctest.Wait()
		want := map[string]any{"name": "build", "started": "2026-11-26T10:15:00Z"}
		if got := stageOf(t, rec, j.ID); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("stage = %v, want %v", got, want)
		}
		if got := rec.job(j.ID).Status; got != Running {
			t.Errorf("status %s while building, want running", got)
		}

		release()
		waitStatus(t, rec, j.ID, Succeeded)
		if st := stageOf(t, rec, j.ID); st != nil {
			t.Errorf("a finished job still names stage %v", st)
		}
	})
}
