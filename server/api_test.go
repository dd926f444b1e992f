package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
	"github.com/swarmhook/swarmhook/webhook"
)

const testSecret = "hook-secret"

// fakeJobs records what was submitted, storing jobs in the real store.
type fakeJobs struct {
	mu    sync.Mutex
	store *store.SQLite
	got   []job.Request
}

func (f *fakeJobs) Submit(ctx context.Context, req job.Request) (*job.Job, error) {
	f.mu.Lock()
	f.got = append(f.got, req)
	f.mu.Unlock()
	j := &job.Job{Project: req.Project, Branch: req.Branch, Commit: req.Commit, Status: job.Queued, Created: time.Now()}
	return j, f.store.Create(ctx, j, req.Delivery)
}

// Waiting knows no waiting build: fakeJobs queues none.
func (*fakeJobs) Waiting(int64) (*job.Job, bool) { return nil, false }

func newTestServer(t *testing.T) (*Server, *fakeJobs, *store.SQLite, *store.LogDir) {
	t.Helper()
	cfg, err := config.Load(strings.NewReader(`
registry: {host: "r:5000"}
webhook: {max_body_bytes: 2048}
tokens:
  - {name: reader, token: reader-token-0123456789, scopes: [read]}
  - {name: boss, token: admin-token-0123456789, scopes: [admin]}
projects:
  - {name: shop, repo: x, secret: `+testSecret+`, branches: [main, "feature/*"], images: [{name: shop/api}]}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	st, logs := openStore(t)
	jobs := &fakeJobs{store: st}
	return New(Deps{Config: cfg, Jobs: jobs, Store: st, Logs: logs, Log: zerolog.Nop()}), jobs, st, logs
}

// openStore opens a job store and log directory of the test's own.
func openStore(t *testing.T) (*store.SQLite, *store.LogDir) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs, err := store.NewLogDir(filepath.Join(dir, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	return st, logs
}

func pushBody(ref, after, message string) []byte {
	b, _ := json.Marshal(map[string]any{"ref": ref, "before": strings.Repeat("1", 40), "after": after,
		"pusher": map[string]string{"name": "tess"}, "head_commit": map[string]string{"message": message}})
	return b
}

func deliver(s *Server, project string, body []byte, sig string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/hooks/"+project, bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", sig)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func TestHookAnswers(t *testing.T) {
	sha := strings.Repeat("a", 40)
	tests := []struct {
		name      string
		project   string
		body      []byte
		badSig    bool
		wantCode  int
		wantBody  string
		wantQueue bool
	}{
		{name: "push queues", project: "shop", body: pushBody("refs/heads/main", sha, "x"), wantCode: 202, wantBody: `"job":`, wantQueue: true},
		{name: "glob branch", project: "shop", body: pushBody("refs/heads/feature/a", sha, "x"), wantCode: 202, wantQueue: true},
		{name: "other branch ignored", project: "shop", body: pushBody("refs/heads/dev", sha, "x"), wantCode: 200, wantBody: "matches none"},
		{name: "deleted branch", project: "shop", body: pushBody("refs/heads/main", strings.Repeat("0", 40), "x"), wantCode: 200, wantBody: "deleted"},
		{name: "tag push", project: "shop", body: pushBody("refs/tags/v1", sha, "x"), wantCode: 200, wantBody: "builds no tags"},
		{name: "skip ci", project: "shop", body: pushBody("refs/heads/main", sha, "wip [skip ci]"), wantCode: 200, wantBody: "skip CI"},
		{name: "bad signature", project: "shop", body: pushBody("refs/heads/main", sha, "x"), badSig: true, wantCode: 401, wantBody: `"error":`},
		{name: "malformed", project: "shop", body: []byte(`{"ref":`), wantCode: 400, wantBody: "malformed"},
		{name: "unknown project", project: "nope", body: pushBody("refs/heads/main", sha, "x"), wantCode: 404, wantBody: "unknown project"},
		{name: "too large", project: "shop", body: pushBody("refs/heads/main", sha, strings.Repeat("x", 4096)), wantCode: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, jobs, _, _ := newTestServer(t)
			sig := webhook.Sign(testSecret, tt.body)
			if tt.badSig {
				sig = webhook.Sign("wrong", tt.body)
			}
			rec := deliver(s, tt.project, tt.body, sig)
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("got %d %s, want %d containing %q", rec.Code, rec.Body, tt.wantCode, tt.wantBody)
			}
			if queued := len(jobs.got) > 0; queued != tt.wantQueue {
				t.Errorf("job queued = %v, want %v", queued, tt.wantQueue)
			}
			if strings.Contains(rec.Body.String(), testSecret) {
				t.Error("answer contains the secret")
			}
		})
	}
}

func apiGet(s *Server, path, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func TestAPIAuth(t *testing.T) {
	s, _, st, _ := newTestServer(t)
	st.Create(context.Background(), &job.Job{Project: "shop", Status: job.Queued}, nil)
	for _, tt := range []struct {
		token string
		want  int
	}{{"", 401}, {"wrong-token-0123456789", 401}, {"reader-token-0123456789", 200}, {"admin-token-0123456789", 200}} {
		if rec := apiGet(s, "/api/jobs/1", tt.token); rec.Code != tt.want {
			t.Errorf("token %q: %d %s, want %d", tt.token, rec.Code, rec.Body, tt.want)
		}
	}
	if rec := apiGet(s, "/api/jobs/x", "reader-token-0123456789"); rec.Code != 400 {
		t.Errorf("bad id: %d", rec.Code)
	}
	if rec := apiGet(s, "/api/jobs/99", "reader-token-0123456789"); rec.Code != 404 {
		t.Errorf("missing job: %d", rec.Code)
	}
}

func TestListJobs(t *testing.T) {
	s, _, st, _ := newTestServer(t)
	ctx := context.Background()
	for _, b := range []string{"main", "dev", "main"} {
		st.Create(ctx, &job.Job{Project: "shop", Branch: b, Status: job.Queued}, nil)
	}
	rec := apiGet(s, "/api/jobs?branch=main&limit=1", "reader-token-0123456789")
	var got struct{ Jobs []job.Job }
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if len(got.Jobs) != 1 || got.Jobs[0].ID != 3 {
		t.Errorf("jobs = %+v", got.Jobs)
	}
	rec = apiGet(s, "/api/jobs?branch=main&before=3", "reader-token-0123456789")
	json.Unmarshal(rec.Body.Bytes(), &got)
	if len(got.Jobs) != 1 || got.Jobs[0].ID != 1 {
		t.Errorf("second page = %+v", got.Jobs)
	}
	if rec := apiGet(s, "/api/jobs?limit=0", "reader-token-0123456789"); rec.Code != 400 {
		t.Errorf("limit=0: %d", rec.Code)
	}
}

// TestFollowLogStreamsUntilJobEnds: lines arrive as they are written,
// long after the server's write timeout (a stream has a deadline per
// write instead), until the job ends.
func TestFollowLogStreamsUntilJobEnds(t *testing.T) {
	ls := startLive(t, Limits{WriteTimeout: time.Millisecond}, Deps{})
	ctx, st := context.Background(), ls.store
	j, w := ls.runningJob(t, 0)
	io.WriteString(w, "line one\n")

	req, _ := http.NewRequest(http.MethodGet, "http://"+ls.addr+"/api/jobs/1/log?follow=1", nil)
	req.Header.Set("Authorization", "Bearer reader-token-0123456789")
	resp, err := failsafeClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() || lines.Text() != "line one" {
		t.Fatalf("first line %q", lines.Text())
	}
	// A line written while the client watches arrives before the job
	// ends, a followPoll or more after the write timeout.
	io.WriteString(w, "line two\n")
	if !lines.Scan() || lines.Text() != "line two" {
		t.Fatalf("second line %q", lines.Text())
	}
	io.WriteString(w, "SUCCEEDED\n")
	j.Status = job.Succeeded
	st.Save(ctx, j)
	rest, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(rest), "SUCCEEDED") {
		t.Errorf("stream ended without the last line: %q", rest)
	}
}
