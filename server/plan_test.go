package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/stack"
)

// fakePlanner answers with plan, or err, and records the branch.
type fakePlanner struct {
	plan   *stack.Plan
	err    error
	branch string
}

func (f *fakePlanner) PlanBranch(_ context.Context, _, branch string) (*stack.Plan, error) {
	f.branch = branch
	return f.plan, f.err
}

func refusedFile(t *testing.T) error {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "c.yml"), []byte("services:\n  a:\n    image: x:1\n    privileged: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := stack.Load(context.Background(), stack.Source{Name: "s", WorkTree: dir, File: "c.yml"})
	return err
}

func TestPlanAnswers(t *testing.T) {
	plan := &stack.Plan{Stack: "shop", Changes: []stack.Change{{Kind: stack.KindService, Name: "shop_web", Action: stack.Update, Fields: []string{"environment"}}}}
	tests := []struct {
		name     string
		token    string
		body     string
		planner  *fakePlanner
		wantCode int
		wantBody string
	}{
		{"plan", "reader-token-0123456789", `{"branch":"main"}`, &fakePlanner{plan: plan}, 200, `"fields":["environment"]`},
		{"no token", "", `{"branch":"main"}`, &fakePlanner{plan: plan}, 401, "token"},
		{"bad branch", "reader-token-0123456789", `{"branch":"../x"}`, &fakePlanner{plan: plan}, 400, "branch"},
		{"no stack", "reader-token-0123456789", `{"branch":"main"}`, &fakePlanner{err: job.ErrNoStack}, 400, "no deploy target with a stack"},
		{"refused file", "reader-token-0123456789", `{"branch":"main"}`, &fakePlanner{err: refusedFile(t)}, 422, "c.yml:4: services.a.privileged"},
		{"unknown project", "reader-token-0123456789", `{"branch":"main"}`, &fakePlanner{err: job.ErrUnknownProject}, 404, "unknown project"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _, _ := newTestServer(t)
			s.d.Plans = tt.planner
			req := httptest.NewRequest(http.MethodPost, "/api/projects/shop/plan", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("answer %d %s, want %d containing %q", rec.Code, rec.Body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

// blockingPlanner holds each plan until release closes or its context
// ends, counting the plans under way.
type blockingPlanner struct {
	started chan struct{}
	release chan struct{}
}

func (b *blockingPlanner) PlanBranch(ctx context.Context, _, _ string) (*stack.Plan, error) {
	b.started <- struct{}{}
	select {
	case <-b.release:
		return &stack.Plan{Stack: "shop"}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func planRequest(s *Server) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/api/projects/shop/plan", strings.NewReader(`{"branch":"main"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer reader-token-0123456789")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// TestPlansAreBounded: a plan checks a branch out and reads the Swarm on
// a read token's request, so plans at once are capped (429 past the
// cap) and each ends with the write timeout (504), after which nobody
// could read its answer anyway.
func TestPlansAreBounded(t *testing.T) {
	s, _, _, _ := newTestServer(t)
	p := &blockingPlanner{started: make(chan struct{}, maxPlans+1), release: make(chan struct{})}
	s.d.Plans = p
	codes := make(chan int, maxPlans)
	for range maxPlans {
		go func() { codes <- planRequest(s).Code }()
		<-p.started
	}
	if rec := planRequest(s); rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "plans") {
		t.Errorf("a plan past the cap: %d %s, want 429 naming the cap", rec.Code, rec.Body)
	}
	close(p.release)
	for range maxPlans {
		if c := <-codes; c != http.StatusOK {
			t.Errorf("a plan within the cap: %d", c)
		}
	}

	s, _, _, _ = newTestServer(t)
	s.limits.WriteTimeout = 50 * time.Millisecond
	s.d.Plans = &blockingPlanner{started: make(chan struct{}, 1), release: make(chan struct{})}
	if rec := planRequest(s); rec.Code != http.StatusGatewayTimeout {
		t.Errorf("a plan that never ends: %d %s, want 504", rec.Code, rec.Body)
	}
}
