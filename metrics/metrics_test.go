package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/registry"
	"github.com/swarmhook/swarmhook/updater"
)

func TestDeliveryIncrementsItsLabelledCounter(t *testing.T) {
	m := New()
	m.Delivery("github", "accepted")
	m.Delivery("github", "accepted")
	m.Delivery("gitlab", "refused")
	m.Delivery("", "refused")
	tests := []struct {
		provider, outcome string
		want              float64
	}{
		{"github", "accepted", 2},
		{"gitlab", "refused", 1},
		{"unknown", "refused", 1},
		{"github", "refused", 0},
		{"gitlab", "accepted", 0},
	}
	for _, tt := range tests {
		if got := testutil.ToFloat64(m.deliveries.WithLabelValues(tt.provider, tt.outcome)); got != tt.want {
			t.Errorf("deliveries{%s,%s} = %v, want %v", tt.provider, tt.outcome, got, tt.want)
		}
	}
}

func TestJobChangedCountsEndsOnceAndStages(t *testing.T) {
	m := New()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	j := &job.Job{ID: 1, Project: "shop", Action: job.ActionBuild, Status: job.Running}
	m.JobChanged(j)
	if got := testutil.ToFloat64(m.running); got != 1 {
		t.Errorf("running = %v, want 1", got)
	}
	j.Status = job.Failed
	j.Stages = []job.Stage{
		{Name: "build", Started: t0, Finished: t0.Add(3 * time.Second)},
		{Name: "deploy web", Started: t0, Finished: t0.Add(40 * time.Second)},
		{Name: "deploy api", Started: t0, Finished: t0.Add(50 * time.Second)},
	}
	m.JobChanged(j)
	m.JobChanged(j) // a repeat of the same end
	if got := testutil.ToFloat64(m.running); got != 0 {
		t.Errorf("running = %v, want 0", got)
	}
	if got := testutil.ToFloat64(m.jobs.WithLabelValues("shop", "build", "failed")); got != 1 {
		t.Errorf("jobs{failed} = %v, want 1", got)
	}
	// A job this process never saw start (superseded in the queue, or
	// interrupted by the previous process) must not drive running negative.
	m.JobChanged(&job.Job{ID: 2, Project: "shop", Action: job.ActionBuild, Status: job.Superseded})
	if got := testutil.ToFloat64(m.running); got != 0 {
		t.Errorf("running = %v after a superseded job, want 0", got)
	}
	if n := testutil.CollectAndCount(m.stages); n != 2 {
		t.Errorf("%d stage series, want 2 (build, deploy)", n)
	}
	body := scrape(t, m)
	for _, want := range []string{
		`swarmhook_stage_duration_seconds_count{stage="deploy"} 2`,
		`swarmhook_stage_duration_seconds_sum{stage="deploy"} 90`,
		`swarmhook_jobs_total{action="build",project="shop",status="superseded"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestQueueDepthReadAtScrape(t *testing.T) {
	m := New()
	depth := 0
	m.QueueDepth(func() int { return depth })
	depth = 3
	if !strings.Contains(scrape(t, m), "swarmhook_queue_depth 3") {
		t.Error("queue depth not 3 at scrape")
	}
}

func TestNotifiedCountsByKindAndOutcome(t *testing.T) {
	m := New()
	m.Notified("status", "delivered")
	m.Notified("slack", "dropped")
	if got := testutil.ToFloat64(m.notifications.WithLabelValues("status", "delivered")); got != 1 {
		t.Errorf("status delivered = %v", got)
	}
	if got := testutil.ToFloat64(m.notifications.WithLabelValues("slack", "delivered")); got != 0 {
		t.Errorf("slack delivered = %v, want 0", got)
	}
}

// fakeEngine fails every call with err.
type fakeEngine struct{ err error }

func (f fakeEngine) Build(context.Context, builder.Request, io.Writer) (string, error) {
	return "", f.err
}
func (f fakeEngine) Push(context.Context, string, io.Writer) (string, error) { return "", f.err }
func (f fakeEngine) Host() string                                            { return "" }
func (f fakeEngine) Ref(repo, tag string) string                             { return repo + ":" + tag }
func (f fakeEngine) Retag(context.Context, string, string, string, string, io.Writer) (string, error) {
	return "", f.err
}
func (f fakeEngine) Digest(context.Context, string, string) (string, error) { return "", f.err }

// fakeRollout fails every stack service change with err.
type fakeRollout struct{ err error }

func (f fakeRollout) Create(context.Context, updater.Creator, swarm.ServiceSpec, updater.Settings, time.Duration, io.Writer) (updater.Result, error) {
	return updater.Result{}, f.err
}

func (f fakeRollout) Replace(context.Context, swarm.ServiceSpec, updater.Settings, time.Duration, io.Writer) (updater.Result, error) {
	return updater.Result{}, f.err
}

func (f fakeRollout) Rollback(context.Context, string, time.Duration, io.Writer) (updater.Result, error) {
	return updater.Result{}, f.err
}

func TestWrappersCountFaultsNotAnswers(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		counts bool
	}{
		{"engine fault", errors.New("daemon: no space left on device"), true},
		{"cancelled", fmt.Errorf("build: %w", context.Canceled), false},
		{"tag not found", fmt.Errorf("resolve: %w", registry.ErrNotFound), false},
		{"success", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			ctx := context.Background()
			m.Builder(fakeEngine{tt.err}).Build(ctx, builder.Request{}, io.Discard)
			m.Builder(fakeEngine{tt.err}).Push(ctx, "r", io.Discard)
			m.Tagger(fakeEngine{tt.err}).Digest(ctx, "r", "t")
			roll := m.Rollout(fakeRollout{tt.err})
			roll.Create(ctx, nil, swarm.ServiceSpec{}, updater.Settings{}, time.Minute, io.Discard)
			roll.Replace(ctx, swarm.ServiceSpec{}, updater.Settings{}, time.Minute, io.Discard)
			roll.Rollback(ctx, "s", time.Minute, io.Discard)
			want := 0.0
			if tt.counts {
				want = 1
			}
			for _, c := range []struct {
				what string
				got  float64
			}{
				{"engine build", testutil.ToFloat64(m.engineErrors.WithLabelValues("build"))},
				{"engine push", testutil.ToFloat64(m.engineErrors.WithLabelValues("push"))},
				{"registry digest", testutil.ToFloat64(m.registryErrors.WithLabelValues("digest"))},
				{"stack create", testutil.ToFloat64(m.engineErrors.WithLabelValues("create"))},
				{"stack update", testutil.ToFloat64(m.engineErrors.WithLabelValues("update"))},
				{"stack rollback", testutil.ToFloat64(m.engineErrors.WithLabelValues("rollback"))},
			} {
				if c.got != want {
					t.Errorf("%s errors = %v, want %v", c.what, c.got, want)
				}
			}
		})
	}
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics answered %d", rec.Code)
	}
	return rec.Body.String()
}
