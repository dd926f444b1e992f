package job

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/updater"
)

// TestJobJSONOmitsAbsentValues: a record says nothing about what a job
// has not got yet (no images, no times, no services) rather than
// "image": "", 0001-01-01 times or null lists.
func TestJobJSONOmitsAbsentValues(t *testing.T) {
	rec := newRecorder()
	r := newTestRunner(t, rec, 1)
	submit := func(req Request) *Job {
		t.Helper()
		j, err := r.Submit(context.Background(), req) // never started: stays queued
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	three := uint64(3)
	// Service actions start at once, so these are written as Submit
	// records them.
	created := time.Date(2026, 11, 26, 10, 15, 0, 0, time.UTC)
	scale := &Job{ID: 7, Number: 7, Action: ActionScale, Trigger: TriggerManual, Status: Queued, Service: "web", Replicas: &three, Created: created}
	skipped := scale.Clone()
	skipped.Status, skipped.Services = Failed, []updater.Result{{Service: "web", Outcome: updater.Skipped}}
	tests := []struct {
		name string
		j    *Job
	}{
		{"queued build", submit(Request{Project: "shop", Trigger: TriggerPush, Ref: "refs/heads/main", Branch: "main", Commit: "c0ffee"})},
		{"queued service action", scale},
		{"skipped service", skipped},
		{"image without a -latest tag", &Job{ID: 9, Action: ActionDeploy, Status: Queued, Created: created, Images: []Image{{Name: "shop/api", Tag: "v1"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.j)
			if err != nil {
				t.Fatal(err)
			}
			for _, bad := range []string{`""`, "0001-01-01", "null"} {
				if strings.Contains(string(b), bad) {
					t.Errorf("job JSON has %s: %s", bad, b)
				}
			}
			var back Job
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back.ID != tt.j.ID || back.Status != tt.j.Status {
				t.Errorf("read back as %+v", back)
			}
		})
	}
}
