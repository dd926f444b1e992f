package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/gate"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
)

// handback notes the jobs the gate hands back; it saves decisions in
// store, when it has one, as job.Runner does.
type handback struct {
	mu        sync.Mutex
	continued []int64
	ended     map[int64]job.Status
	store     *store.SQLite
	// saveErr, when set, is what Decided answers, saving nothing.
	saveErr error
}

func (h *handback) Decided(ctx context.Context, j *job.Job) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.saveErr != nil {
		return h.saveErr
	}
	if h.store == nil {
		return nil
	}
	return h.store.Save(ctx, j)
}

func (h *handback) Continue(j *job.Job) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.continued = append(h.continued, j.ID)
}

func (h *handback) End(j *job.Job, to job.Status, _ string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended[j.ID] = to
}

const gateConfig = `
registry: {host: "r:5000"}
tokens:
  - {name: alice, token: alice-token-0123456789, scopes: [deploy, approve]}
  - {name: bob, token: bob-token-0123456789ab, scopes: [approve]}
  - {name: ops, token: ops-token-0123456789ab, scopes: [override, read]}
  - {name: reader, token: reader-token-0123456789, scopes: [read]}
projects:
  - name: shop
    repo: x
    allow_unsigned: true
    images: [{name: shop/api}]
    deploy:
      - {branch: main, environment: staging, services: [api_staging]}
      - {environment: production, promote_from: staging, approve: {}, services: [api]}
      - {branch: night, environment: night, windows: [{start: "0 22 * * *", duration: 1h}], services: [api_night]}
`

func newGateServer(t *testing.T) (*Server, *fakeJobs, *store.SQLite, *gate.Gate, *handback) {
	t.Helper()
	cfg, err := config.Load(strings.NewReader(gateConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	st, logs := openStore(t)
	jobs := &fakeJobs{store: st}
	noon := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return noon }
	g := gate.New(cfg, gate.Options{Now: now, Log: zerolog.Nop()})
	h := &handback{ended: map[int64]job.Status{}, store: st}
	g.Attach(h)
	return New(Deps{Config: cfg, Jobs: jobs, Store: st, Logs: logs, Log: zerolog.Nop(), Gate: g, Now: now}), jobs, st, g, h
}

// holdJob records a job started by who and has the gate hold it for
// target i.
func holdJob(t *testing.T, st *store.SQLite, g *gate.Gate, who string, i int) int64 {
	t.Helper()
	cfg, _ := config.Load(strings.NewReader(gateConfig), func(string) (string, bool) { return "", false })
	p, _ := cfg.Project("shop")
	j := &job.Job{Project: "shop", Status: job.Waiting, Who: who, Created: time.Now()}
	if err := st.Create(context.Background(), j, nil); err != nil {
		t.Fatal(err)
	}
	j.Wait = g.Check(j, p, i)
	g.Hold(j)
	return j.ID
}

func apiCall(s *Server, method, path, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func TestApproveAPI(t *testing.T) {
	for _, tc := range []struct {
		name, token, path, body string
		target                  int
		code                    int
		want                    string
	}{
		{name: "own job", token: "alice-token-0123456789", path: "approve", target: 1, code: 403, want: "may not be approved by who started it"},
		{name: "another token", token: "bob-token-0123456789ab", path: "approve", target: 1, code: 200, want: `"verdict":"approved","who":"bob"`},
		{name: "without the scope", token: "reader-token-0123456789", path: "approve", target: 1, code: 403, want: "lacks the scope"},
		{name: "reject", token: "bob-token-0123456789ab", path: "reject", body: `{"reason": "broken"}`, target: 1, code: 200, want: `"reason":"broken"`},
		{name: "approve a window wait", token: "bob-token-0123456789ab", path: "approve", target: 2, code: 409, want: "waits for its window"},
		{name: "override without a reason", token: "ops-token-0123456789ab", path: "deploy-now", target: 2, code: 400, want: "reason must say why"},
		{name: "override", token: "ops-token-0123456789ab", path: "deploy-now", body: `{"reason": "hotfix"}`, target: 2, code: 200, want: `"verdict":"override","who":"ops","reason":"hotfix"`},
		{name: "override an approval", token: "ops-token-0123456789ab", path: "deploy-now", body: `{"reason": "hotfix"}`, target: 1, code: 409, want: "an override does not replace"},
		{name: "override without the scope", token: "bob-token-0123456789ab", path: "deploy-now", body: `{"reason": "hotfix"}`, target: 2, code: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, st, g, h := newGateServer(t)
			id := holdJob(t, st, g, "alice", tc.target)
			rec := apiCall(s, http.MethodPost, "/api/jobs/"+itoa(id)+"/"+tc.path, tc.token, tc.body)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("got %d %s, want %d with %q", rec.Code, rec.Body, tc.code, tc.want)
			}
			_, held := g.Held(id)
			if (tc.code == 200) == held {
				t.Errorf("held = %v after %d", held, tc.code)
			}
			if tc.code == 200 && len(h.continued)+len(h.ended) != 1 {
				t.Errorf("handed back: continued %v, ended %v", h.continued, h.ended)
			}
		})
	}
}

// TestApprovalByAJoinedPusherAPI: bob's push joined the build alice's
// push then took over (its who is alice): bob may not approve it either.
func TestApprovalByAJoinedPusherAPI(t *testing.T) {
	s, _, st, g, _ := newGateServer(t)
	cfg, _ := config.Load(strings.NewReader(gateConfig), func(string) (string, bool) { return "", false })
	p, _ := cfg.Project("shop")
	j := &job.Job{Project: "shop", Status: job.Waiting, Who: "alice", Starters: []string{"bob", "alice"}, Pushes: 2, Created: time.Now()}
	if err := st.Create(context.Background(), j, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get(context.Background(), j.ID); err != nil || !slices.Equal(got.Starters, j.Starters) {
		t.Fatalf("stored starters %v (%v), want %v", got.Starters, err, j.Starters)
	}
	j.Wait = g.Check(j, p, 1)
	g.Hold(j)
	rec := apiCall(s, http.MethodPost, "/api/jobs/"+itoa(j.ID)+"/approve", "bob-token-0123456789ab", "")
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "joined") {
		t.Errorf("bob approving a build his push joined: %d %s, want 403", rec.Code, rec.Body)
	}
	if _, held := g.Held(j.ID); !held {
		t.Error("a refused approval let the job go")
	}
}

// TestApprovalIsSavedBeforeItIsAnswered: a 200 means the approval is
// saved with the job, so a restart (a new gate over the store) lets the
// job deploy rather than wait again; an approval that cannot be saved
// is 503 and the job still waits, unapproved.
func TestApprovalIsSavedBeforeItIsAnswered(t *testing.T) {
	s, _, st, g, h := newGateServer(t)
	id := holdJob(t, st, g, "alice", 1)
	path := "/api/jobs/" + itoa(id) + "/approve"

	h.mu.Lock()
	h.saveErr = fmt.Errorf("save job %d: %w", id, store.ErrFull)
	h.mu.Unlock()
	if rec := apiCall(s, http.MethodPost, path, "bob-token-0123456789ab", ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("approval with data_dir full: %d %s, want 503", rec.Code, rec.Body)
	}
	if _, held := g.Held(id); !held || len(h.continued) != 0 {
		t.Fatalf("an approval not saved let the job go: held %v, continued %v", held, h.continued)
	}

	h.mu.Lock()
	h.saveErr = nil
	h.mu.Unlock()
	if rec := apiCall(s, http.MethodPost, path, "bob-token-0123456789ab", ""); rec.Code != http.StatusOK {
		t.Fatalf("approval: %d %s", rec.Code, rec.Body)
	}
	j, err := st.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != job.Waiting || len(j.Decisions) != 1 || j.Decisions[0].Verdict != job.Approved || j.Decisions[0].Who != "bob" {
		t.Fatalf("stored job after a 200: %s with %+v, want waiting, approved by bob", j.Status, j.Decisions)
	}

	// Restart: the runner had shut down and took the job no more.
	cfg, _ := config.Load(strings.NewReader(gateConfig), func(string) (string, bool) { return "", false })
	after := gate.New(cfg, gate.Options{Log: zerolog.Nop()})
	h2 := &handback{ended: map[int64]job.Status{}, store: st}
	after.Attach(h2)
	after.Hold(j)
	if _, held := after.Held(id); held || len(h2.continued) != 1 {
		t.Errorf("after a restart: held %v, continued %v; want the approved job deploying", held, h2.continued)
	}
}

func TestApproveUnknownJob(t *testing.T) {
	s, _, st, _, _ := newGateServer(t)
	if rec := apiCall(s, http.MethodPost, "/api/jobs/99/approve", "bob-token-0123456789ab", ""); rec.Code != 404 {
		t.Errorf("unknown job: %d %s", rec.Code, rec.Body)
	}
	j := &job.Job{Project: "shop", Status: job.Succeeded, Created: time.Now()}
	if err := st.Create(context.Background(), j, nil); err != nil {
		t.Fatal(err)
	}
	if rec := apiCall(s, http.MethodPost, "/api/jobs/"+itoa(j.ID)+"/approve", "bob-token-0123456789ab", ""); rec.Code != 409 {
		t.Errorf("job not waiting: %d %s", rec.Code, rec.Body)
	}
}

func TestPromoteAPI(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"promotes", `{"from": "staging", "to": "production"}`, 202, `"job":`},
		{"unknown from", `{"from": "qa", "to": "production"}`, 400, `has no environment \"qa\"`},
		{"unknown to", `{"from": "staging", "to": "prod"}`, 400, `has no environment \"prod\"`},
		{"same", `{"from": "staging", "to": "staging"}`, 400, "both"},
		{"not its source", `{"from": "night", "to": "production"}`, 400, "takes promotions from staging only"},
		{"unknown field", `{"from": "staging", "to": "production", "force": true}`, 400, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, jobs, _, _, _ := newGateServer(t)
			rec := apiCall(s, http.MethodPost, "/api/projects/shop/promote", "alice-token-0123456789", tc.body)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("got %d %s, want %d with %q", rec.Code, rec.Body, tc.code, tc.want)
			}
			if tc.code != 202 {
				if len(jobs.got) != 0 {
					t.Error("a refused promotion submitted a job")
				}
				return
			}
			got := jobs.got[0]
			if got.Action != job.ActionPromote || got.From != "staging" || got.Environment != "production" || got.Who != "alice" {
				t.Errorf("request = %+v", got)
			}
		})
	}
}

func TestFreezeAPI(t *testing.T) {
	s, _, _, _, _ := newGateServer(t)
	ops := "ops-token-0123456789ab"
	for _, tc := range []struct {
		name, method, token, body string
		code                      int
		want                      string
	}{
		{"needs override", http.MethodPost, "bob-token-0123456789ab", `{"target": "production", "until": "2h"}`, 403, ""},
		{"unknown target", http.MethodPost, ops, `{"target": "qa", "until": "2h"}`, 400, `\"qa\" is not`},
		{"past", http.MethodPost, ops, `{"target": "production", "until": "2026-12-03T11:00:00Z"}`, 400, "is not ahead"},
		{"garbage until", http.MethodPost, ops, `{"target": "production", "until": "soon"}`, 400, "neither a time"},
		{"freezes", http.MethodPost, ops, `{"target": "production", "until": "2h", "reason": "launch"}`, 200, `"until":"2026-12-03T14:00:00Z","reason":"launch","who":"ops"`},
		{"lift unknown", http.MethodDelete, ops, `{"target": "staging"}`, 404, "no freeze"},
		{"lift", http.MethodDelete, ops, `{"target": "production"}`, 200, `"freezes":[]`},
	} {
		rec := apiCall(s, tc.method, "/api/freeze", tc.token, tc.body)
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
			t.Fatalf("%s: got %d %s, want %d with %q", tc.name, rec.Code, rec.Body, tc.code, tc.want)
		}
		if tc.name == "freezes" {
			list := apiCall(s, http.MethodGet, "/api/freezes", "reader-token-0123456789", "")
			if list.Code != 200 || !strings.Contains(list.Body.String(), `"target":"production"`) {
				t.Fatalf("GET /api/freezes: %d %s", list.Code, list.Body)
			}
		}
	}
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }
