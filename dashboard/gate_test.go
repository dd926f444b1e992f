package dashboard

import (
	"testing"

	"github.com/swarmhook/swarmhook/job"
)

func TestHeldJobsRead(t *testing.T) {
	for _, tc := range []struct {
		status job.Status
		class  string
	}{
		{job.Waiting, "run"},
		{job.Rejected, "bad"},
		{job.Expired, "bad"},
	} {
		if got := statusClass(tc.status); got != tc.class {
			t.Errorf("statusClass(%s) = %q, want %q", tc.status, got, tc.class)
		}
	}
	j := &job.Job{Action: job.ActionPromote, From: "staging", Environment: "production"}
	if got := describe(j); got != "promote staging to production" {
		t.Errorf("describe = %q", got)
	}
}
