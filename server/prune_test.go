package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/prune"
	"github.com/swarmhook/swarmhook/tagpolicy"
)

type fakePruner struct {
	plans   int
	runs    []string // who
	trigger job.Trigger
	err     error
}

func (f *fakePruner) Plan(context.Context) (*prune.Report, error) {
	f.plans++
	return &prune.Report{DryRun: true, Repositories: []prune.Repo{{Repository: "shop/api", Tags: 2,
		Delete: []tagpolicy.Decision{{Tag: "main-20260101000000"}},
		Keep:   []tagpolicy.Decision{{Tag: "main-latest", Reason: tagpolicy.KeepLatest}}}}}, nil
}

func (f *fakePruner) Run(_ context.Context, trigger job.Trigger, who string) (*prune.Report, error) {
	if f.err != nil {
		return nil, f.err
	}
	f.runs = append(f.runs, who)
	f.trigger = trigger
	return &prune.Report{Job: 7}, nil
}

func TestPruneAPI(t *testing.T) {
	tests := []struct {
		name, token, body string
		err               error
		wantCode          int
		wantBody          string
		wantPlans         int
		wantRuns          int
	}{
		{name: "dry run returns the plan", token: "admin-token-0123456789", body: `{"dry_run":true}`, wantCode: 200, wantBody: `"reason":"moving -latest tag"`, wantPlans: 1},
		{name: "run", token: "admin-token-0123456789", body: `{}`, wantCode: 200, wantBody: `"job":7`, wantRuns: 1},
		{name: "read scope is not enough", token: "reader-token-0123456789", body: `{"dry_run":true}`, wantCode: 403},
		{name: "no token", body: `{"dry_run":true}`, wantCode: 401},
		{name: "already running", token: "admin-token-0123456789", err: prune.ErrRunning, wantCode: 409, wantBody: "already running"},
		{name: "unknown field", token: "admin-token-0123456789", body: `{"dry":true}`, wantCode: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _, _ := newTestServer(t)
			fp := &fakePruner{err: tt.err}
			s.d.Prune = fp
			req := httptest.NewRequest(http.MethodPost, "/api/prune", strings.NewReader(tt.body))
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("got %d %s, want %d containing %q", rec.Code, rec.Body, tt.wantCode, tt.wantBody)
			}
			if fp.plans != tt.wantPlans || len(fp.runs) != tt.wantRuns {
				t.Errorf("plans %d runs %d, want %d and %d", fp.plans, len(fp.runs), tt.wantPlans, tt.wantRuns)
			}
			if tt.wantRuns > 0 && (fp.runs[0] != "boss" || fp.trigger != job.TriggerManual) {
				t.Errorf("run by %q trigger %q", fp.runs[0], fp.trigger)
			}
		})
	}
}
