package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

// recorded is one request a fake host received.
type recorded struct {
	Method, Path, RawPath string
	Header                http.Header
	Body                  map[string]any
	Raw                   []byte
}

// fakeHost records requests and answers each with the next code of
// codes (200 when they run out).
type fakeHost struct {
	*httptest.Server
	mu    sync.Mutex
	got   []recorded
	codes []int
	seen  chan struct{}
}

func newFakeHost(t *testing.T, codes ...int) *fakeHost {
	f := &fakeHost{codes: codes, seen: make(chan struct{}, 100)}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		json.Unmarshal(raw, &body)
		f.mu.Lock()
		f.got = append(f.got, recorded{r.Method, r.URL.Path, r.URL.RawPath, r.Header.Clone(), body, raw})
		code := http.StatusCreated
		if len(f.codes) > 0 {
			code, f.codes = f.codes[0], f.codes[1:]
		}
		f.mu.Unlock()
		w.WriteHeader(code)
		f.seen <- struct{}{}
	}))
	t.Cleanup(f.Close)
	return f
}

// wait waits for n requests and returns all received so far.
func (f *fakeHost) wait(t *testing.T, n int) []recorded {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-f.seen:
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d requests, want %d", i, n)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.got...)
}

// counts is a Recorder.
type counts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counts) Notified(kind, outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[kind+" "+outcome]++
}

func (c *counts) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

func testJob(status job.Status) *job.Job {
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	j := &job.Job{ID: 42, Project: "shop", Number: 7, Action: job.ActionBuild, Trigger: job.TriggerPush,
		Status: status, Ref: "refs/heads/main", Branch: "main", Commit: commit, Who: "alice", Started: start}
	if status.Final() {
		j.Finished = start.Add(83 * time.Second)
	}
	if status == job.Failed {
		j.Error = "build: image shop/api: RUN make: exit code 2"
	}
	return j
}

func newNotifier(t *testing.T, p config.Project, o Options) *Notifier {
	t.Helper()
	cfg := &config.Config{PublicURL: "https://deploy.example.com/", Projects: []config.Project{p}}
	cfg.Projects[0].Name = "shop"
	if cfg.Projects[0].Notify.On == nil {
		cfg.Projects[0].Notify.On = config.DefaultNotifyOn
	}
	if o.Backoff == 0 {
		o.Backoff = time.Millisecond
	}
	n := New(cfg, o)
	n.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	return n
}

func TestCommitStatusRequestShapes(t *testing.T) {
	tests := []struct {
		provider   config.Provider
		repo       string
		wantPath   string // as sent on the wire
		wantHeader map[string]string
		wantStates []string // started, succeeded, failed, interrupted
		contextKey string
	}{
		{
			provider: config.ProviderGitHub, repo: "acme/shop",
			wantPath:   "/repos/acme/shop/statuses/" + commit,
			wantHeader: map[string]string{"Authorization": "Bearer tok-123", "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
			wantStates: []string{"pending", "success", "failure", "error"},
			contextKey: "context",
		},
		{
			provider: config.ProviderGitLab, repo: "acme/shop",
			wantPath:   "/api/v4/projects/acme%2Fshop/statuses/" + commit,
			wantHeader: map[string]string{"PRIVATE-TOKEN": "tok-123"},
			wantStates: []string{"running", "success", "failed", "canceled"},
			contextKey: "name",
		},
		{
			provider: config.ProviderGitea, repo: "acme/shop",
			wantPath:   "/api/v1/repos/acme/shop/statuses/" + commit,
			wantHeader: map[string]string{"Authorization": "token tok-123"},
			wantStates: []string{"pending", "success", "failure", "error"},
			contextKey: "context",
		},
		{
			provider: config.ProviderForgejo, repo: "acme/shop",
			wantPath:   "/api/v1/repos/acme/shop/statuses/" + commit,
			wantHeader: map[string]string{"Authorization": "token tok-123"},
			wantStates: []string{"pending", "success", "failure", "error"},
			contextKey: "context",
		},
	}
	for _, tt := range tests {
		t.Run(string(tt.provider), func(t *testing.T) {
			host := newFakeHost(t)
			n := newNotifier(t, config.Project{Status: &config.CommitStatus{
				Provider: tt.provider, APIURL: host.URL, Token: "tok-123", Repo: tt.repo, Context: "swarmhook/shop",
			}}, Options{})
			for _, st := range []job.Status{job.Running, job.Succeeded, job.Failed, job.Interrupted} {
				n.JobChanged(testJob(st))
			}
			got := host.wait(t, 4)
			var states []string
			for _, r := range got {
				if r.Method != http.MethodPost {
					t.Errorf("method %s, want POST", r.Method)
				}
				wire := r.Path
				if r.RawPath != "" {
					wire = r.RawPath
				}
				if wire != tt.wantPath {
					t.Errorf("path %s, want %s", wire, tt.wantPath)
				}
				for k, v := range tt.wantHeader {
					if r.Header.Get(k) != v {
						t.Errorf("header %s = %q, want %q", k, r.Header.Get(k), v)
					}
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
				if r.Body[tt.contextKey] != "swarmhook/shop" {
					t.Errorf("%s = %v, want swarmhook/shop", tt.contextKey, r.Body[tt.contextKey])
				}
				if r.Body["target_url"] != "https://deploy.example.com/api/jobs/42" {
					t.Errorf("target_url = %v", r.Body["target_url"])
				}
				if d, _ := r.Body["description"].(string); d == "" || len([]rune(d)) > 140 {
					t.Errorf("description %q: want 1 to 140 characters", d)
				}
				if tt.provider == config.ProviderGitLab && r.Body["ref"] != "main" {
					t.Errorf("gitlab ref = %v, want main", r.Body["ref"])
				}
				states = append(states, r.Body["state"].(string))
			}
			if diff := cmp.Diff(tt.wantStates, states); diff != "" {
				t.Errorf("states (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNoStatusForSupersededOrServiceJobs(t *testing.T) {
	host := newFakeHost(t)
	n := newNotifier(t, config.Project{Status: &config.CommitStatus{Provider: "github", APIURL: host.URL, Token: "t", Repo: "a/b"}}, Options{})
	n.JobChanged(testJob(job.Superseded))
	svc := testJob(job.Succeeded)
	svc.Action, svc.Commit, svc.Service = job.ActionRollback, "", "shop_api"
	n.JobChanged(svc)
	n.JobChanged(testJob(job.Queued))
	n.JobChanged(testJob(job.Succeeded)) // a marker: the one status expected
	got := host.wait(t, 1)
	time.Sleep(50 * time.Millisecond) // let any wrongly queued call arrive
	host.mu.Lock()
	defer host.mu.Unlock()
	if len(host.got) != 1 || got[0].Body["state"] != "success" {
		t.Fatalf("got %d statuses (%v), want only the succeeded job's", len(host.got), got)
	}
}

func TestSlackAndJSONNotifications(t *testing.T) {
	slack := newFakeHost(t)
	hook := newFakeHost(t)
	rec := &counts{}
	n := newNotifier(t, config.Project{Notify: config.Notify{
		Slack:    []string{slack.URL + "/services/T000/B000/XXXX"},
		Webhooks: []config.NotifyWebhook{{URL: hook.URL + "/deploys", Secret: "hmac-key"}},
		On:       []config.Event{config.EventFailure, config.EventSuccess},
	}}, Options{Recorder: rec})

	n.JobChanged(testJob(job.Running)) // not in on: nothing sent
	n.JobChanged(testJob(job.Failed))

	s := slack.wait(t, 1)[0]
	if s.Path != "/services/T000/B000/XXXX" || s.Method != http.MethodPost {
		t.Errorf("slack request %s %s", s.Method, s.Path)
	}
	text, _ := s.Body["text"].(string)
	for _, want := range []string{":x:", "shop #7 failed", "main at 01234567 by alice", "exit code 2", "<https://deploy.example.com/api/jobs/42|job 42>"} {
		if !strings.Contains(text, want) {
			t.Errorf("slack text %q lacks %q", text, want)
		}
	}

	h := hook.wait(t, 1)[0]
	if h.Path != "/deploys" || h.Header.Get("X-Swarmhook-Event") != "failure" || h.Header.Get("X-Swarmhook-Delivery") != "42-failure" {
		t.Errorf("webhook request %s headers %v", h.Path, h.Header)
	}
	if sig := h.Header.Get("X-Swarmhook-Signature"); sig != Sign("hmac-key", h.Raw) {
		t.Errorf("signature %q does not match the body", sig)
	}
	var p Payload
	if err := json.Unmarshal(h.Raw, &p); err != nil {
		t.Fatal(err)
	}
	if p.Event != "failure" || p.Job.ID != 42 || p.Job.Commit != commit || p.URL != "https://deploy.example.com/api/jobs/42" {
		t.Errorf("payload = %+v", p)
	}
	testenvEventually(t, func() bool { return rec.get("slack delivered") == 1 && rec.get("webhook delivered") == 1 })
	slack.mu.Lock()
	defer slack.mu.Unlock()
	if len(slack.got) != 1 {
		t.Errorf("slack got %d messages, want 1 (started is not in on:)", len(slack.got))
	}
}

func TestSlackEscapesControlCharacters(t *testing.T) {
	j := testJob(job.Failed)
	j.Who = "<!channel> & co"
	got := slackText(j, config.EventFailure, "")
	if strings.Contains(got, "<!channel>") || !strings.Contains(got, "&lt;!channel&gt; &amp; co") {
		t.Errorf("slack text %q: pusher name not escaped", got)
	}
}

// TestNotificationLinesStayOneLine: a pusher's name or an error from
// outside cannot add a line to a notification or a commit status.
func TestNotificationLinesStayOneLine(t *testing.T) {
	j := testJob(job.Failed)
	j.Who, j.Error = "mallory\nSUCCEEDED", "build: step failed\x1b[2J\nSUCCEEDED"
	for name, text := range map[string]string{
		"slack":   slackText(j, config.EventFailure, ""),
		"summary": summary(j, config.EventFailure),
		"status":  statusDescription(j, config.EventFailure),
	} {
		if strings.ContainsAny(text, "\n\r\x1b") {
			t.Errorf("%s text %q carries a control character", name, text)
		}
	}
	if got := summary(j, config.EventFailure); !strings.Contains(got, `by "mallory\nSUCCEEDED"`) {
		t.Errorf("summary %q does not show the pusher's name quoted", got)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name         string
		codes        []int
		wantRequests int
		wantOutcome  string
	}{
		{"5xx then success", []int{502, 503, 200}, 3, "delivered"},
		{"429 is retried", []int{429, 204}, 2, "delivered"},
		{"4xx is final", []int{400}, 1, "failed"},
		{"gives up after attempts", []int{500, 500, 500, 500}, 3, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := newFakeHost(t, tt.codes...)
			rec := &counts{}
			n := newNotifier(t, config.Project{Notify: config.Notify{Slack: []string{host.URL}}}, Options{Attempts: 3, Recorder: rec})
			n.JobChanged(testJob(job.Succeeded))
			testenvEventually(t, func() bool { return rec.get("slack "+tt.wantOutcome) == 1 })
			host.mu.Lock()
			defer host.mu.Unlock()
			if len(host.got) != tt.wantRequests {
				t.Errorf("%d requests, want %d", len(host.got), tt.wantRequests)
			}
		})
	}
}

func TestHangingEndpointNeverBlocksTheJob(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	rec := &counts{}
	n := newNotifier(t, config.Project{Notify: config.Notify{Slack: []string{hang.URL}}},
		Options{Timeout: time.Hour, Queue: 2, Workers: 1, Recorder: rec})
	t.Cleanup(func() { close(release) }) // runs before the notifier's shutdown

	// Far more calls than the queue holds, while the endpoint answers
	// none: every JobChanged must still return.
	returned := make(chan struct{})
	go func() {
		for i := 0; i < 50; i++ {
			n.JobChanged(testJob(job.Succeeded))
		}
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("JobChanged blocked on an endpoint that never answers")
	}
	if d := rec.get("slack dropped"); d < 50-3 {
		t.Errorf("%d calls dropped, want at least 47 (queue of 2 plus one in flight)", d)
	}
}

func TestShutdownDrainsQueue(t *testing.T) {
	host := newFakeHost(t)
	rec := &counts{}
	cfg := &config.Config{Projects: []config.Project{{Name: "shop", Notify: config.Notify{Slack: []string{host.URL}, On: config.DefaultNotifyOn}}}}
	n := New(cfg, Options{Recorder: rec})
	for i := 0; i < 5; i++ {
		n.JobChanged(testJob(job.Succeeded))
	}
	n.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rec.get("slack delivered"); got != 5 {
		t.Errorf("%d delivered before Shutdown returned, want 5", got)
	}
	n.JobChanged(testJob(job.Succeeded)) // after shutdown: dropped, no panic
	if got := rec.get("slack dropped"); got != 1 {
		t.Errorf("%d dropped after shutdown, want 1", got)
	}
}

func TestSecretsStayOutOfLogs(t *testing.T) {
	host := newFakeHost(t, 401, 401)
	var logs bytes.Buffer
	const token, hookSecret = "ghp_SECRET_TOKEN_123", "B000/SECRETPATH"
	rec := &counts{}
	n := newNotifier(t, config.Project{
		Status: &config.CommitStatus{Provider: "github", APIURL: host.URL, Token: token, Repo: "a/b", Context: "c"},
		Notify: config.Notify{Slack: []string{"http://127.0.0.1:1/services/" + hookSecret}},
	}, Options{Attempts: 2, Recorder: rec, Log: zerolog.New(zerolog.SyncWriter(&logs))})
	n.JobChanged(testJob(job.Succeeded))
	testenvEventually(t, func() bool { return rec.get("status failed") == 1 && rec.get("slack failed") == 1 })
	out := logs.String() // every log line is written before its outcome is counted
	if !strings.Contains(out, "notification failed") {
		t.Fatalf("no failure logged: %s", out)
	}
	for _, secret := range []string{token, hookSecret} {
		if strings.Contains(out, secret) {
			t.Errorf("log reveals %q:\n%s", secret, out)
		}
	}
}

// testenvEventually polls cond for up to ten seconds.
func testenvEventually(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}
