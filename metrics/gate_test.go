package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/swarmhook/swarmhook/job"
)

func TestDeferredAndOverriddenDeploys(t *testing.T) {
	m := New()
	change := func(id int64, s job.Status, w *job.Wait, d ...job.Decision) {
		m.JobChanged(&job.Job{ID: id, Project: "shop", Action: job.ActionBuild, Status: s, Wait: w, Decisions: d})
	}
	window := &job.Wait{For: job.WaitWindow}
	override := job.Decision{Verdict: job.Overridden, Who: "ops", Reason: "hotfix"}

	change(1, job.Running, nil)
	change(1, job.Waiting, window)
	if got := testutil.ToFloat64(m.running); got != 0 {
		t.Errorf("running = %v while the job waits, want 0", got)
	}
	change(1, job.Waiting, window) // waits again (a freeze began meanwhile): one deferral
	change(1, job.Running, window, override)
	change(1, job.Running, window, override)
	change(2, job.Running, nil)
	change(2, job.Waiting, &job.Wait{For: job.WaitFreeze})
	change(3, job.Running, nil)
	change(3, job.Waiting, &job.Wait{For: job.WaitApproval}) // an approval is no deferral
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"deferred by windows", testutil.ToFloat64(m.deferred.WithLabelValues("shop", "window")), 1},
		{"deferred by freezes", testutil.ToFloat64(m.deferred.WithLabelValues("shop", "freeze")), 1},
		{"overridden", testutil.ToFloat64(m.overridden.WithLabelValues("shop")), 1},
		{"running", testutil.ToFloat64(m.running), 1},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}
