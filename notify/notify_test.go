package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

// fakeNet is the network the notifier's client sees: each host name is
// served in process by its handler, so tests run inside a synctest
// bubble (real sockets never block durably). A host it does not know
// refuses the connection.
type fakeNet map[string]http.Handler

func (n fakeNet) client() *http.Client { return &http.Client{Transport: n} }

// RoundTrip hands r to its host's handler as a server would see it:
// the URL parsed from what goes on the wire.
func (n fakeNet) RoundTrip(r *http.Request) (*http.Response, error) {
	h, ok := n[r.URL.Host]
	if !ok {
		return nil, fmt.Errorf("dial tcp %s: connection refused", r.URL.Host)
	}
	in := r.Clone(r.Context())
	in.RequestURI = r.URL.RequestURI()
	u, err := url.ParseRequestURI(in.RequestURI)
	if err != nil {
		return nil, err
	}
	in.URL, in.Host = u, r.URL.Host
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, in)
	return rec.Result(), nil
}

// recorded is one request a fake host received.
type recorded struct {
	Method, Path, RawPath string
	Header                http.Header
	Body                  map[string]any
	Raw                   []byte
}

// fakeHost records requests and answers each with the next code of
// codes (201 when they run out).
type fakeHost struct {
	mu    sync.Mutex
	got   []recorded
	codes []int
}

func newFakeHost(codes ...int) *fakeHost { return &fakeHost{codes: codes} }

func (f *fakeHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
}

// requests returns the requests received so far.
func (f *fakeHost) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.got...)
}

// counts is a Recorder.
type counts struct {
	mu      sync.Mutex
	changed *sync.Cond
	m       map[string]int
}

func newCounts() *counts {
	c := &counts{m: map[string]int{}}
	c.changed = sync.NewCond(&c.mu)
	return c
}

func (c *counts) Notified(kind, outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[kind+" "+outcome]++
	c.changed.Broadcast()
}

// waitFor blocks until key has been counted n times. In a synctest
// bubble the fake clock moves on while it waits, through backoffs and
// timeouts; if the count can never come, the bubble deadlocks and the
// test fails.
func (c *counts) waitFor(key string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.m[key] < n {
		c.changed.Wait()
	}
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

// newNotifier starts a Notifier for project p, sending through net, and
// shuts it down at cleanup. Inside a bubble its clock is the fake one,
// so the default backoffs and timeouts cost nothing.
func newNotifier(t *testing.T, net fakeNet, p config.Project, o Options) *Notifier {
	t.Helper()
	cfg := &config.Config{PublicURL: "https://deploy.example.com/", Projects: []config.Project{p}}
	cfg.Projects[0].Name = "shop"
	if cfg.Projects[0].Notify.On == nil {
		cfg.Projects[0].Notify.On = config.DefaultNotifyOn
	}
	o.Client = net.client()
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
			synctest.Test(t, func(t *testing.T) {
				host := newFakeHost()
				n := newNotifier(t, fakeNet{"git.test": host}, config.Project{Status: &config.CommitStatus{
					Provider: tt.provider, APIURL: "http://git.test", Token: "tok-123", Repo: tt.repo, Context: "swarmhook/shop",
				}}, Options{})
				for _, st := range []job.Status{job.Running, job.Succeeded, job.Failed, job.Interrupted} {
					n.JobChanged(testJob(st))
				}
				synctest.Wait()
				got := host.requests()
				if len(got) != 4 {
					t.Fatalf("got %d requests, want 4", len(got))
				}
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
		})
	}
}

func TestNoStatusForSupersededOrServiceJobs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host := newFakeHost()
		n := newNotifier(t, fakeNet{"git.test": host}, config.Project{Status: &config.CommitStatus{Provider: "github", APIURL: "http://git.test", Token: "t", Repo: "a/b"}}, Options{})
		n.JobChanged(testJob(job.Superseded))
		svc := testJob(job.Succeeded)
		svc.Action, svc.Commit, svc.Service = job.ActionRollback, "", "shop_api"
		n.JobChanged(svc)
		n.JobChanged(testJob(job.Queued))
		n.JobChanged(testJob(job.Succeeded)) // the one status expected
		synctest.Wait()                      // every queued call has been sent
		if got := host.requests(); len(got) != 1 || got[0].Body["state"] != "success" {
			t.Fatalf("got %d statuses (%v), want only the succeeded job's", len(got), got)
		}
	})
}

func TestSlackAndJSONNotifications(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slack, hook := newFakeHost(), newFakeHost()
		rec := newCounts()
		n := newNotifier(t, fakeNet{"slack.test": slack, "hook.test": hook}, config.Project{Notify: config.Notify{
			Slack:    []string{"http://slack.test/services/T000/B000/XXXX"},
			Webhooks: []config.NotifyWebhook{{URL: "http://hook.test/deploys", Secret: "hmac-key"}},
			On:       []config.Event{config.EventFailure, config.EventSuccess},
		}}, Options{Recorder: rec})

		n.JobChanged(testJob(job.Running)) // not in on: nothing sent
		n.JobChanged(testJob(job.Failed))
		synctest.Wait()

		if got := slack.requests(); len(got) != 1 {
			t.Fatalf("slack got %d messages, want 1 (started is not in on:)", len(got))
		}
		s := slack.requests()[0]
		if s.Path != "/services/T000/B000/XXXX" || s.Method != http.MethodPost {
			t.Errorf("slack request %s %s", s.Method, s.Path)
		}
		text, _ := s.Body["text"].(string)
		for _, want := range []string{":x:", "shop #7 failed", "main at 01234567 by alice", "exit code 2", "<https://deploy.example.com/api/jobs/42|job 42>"} {
			if !strings.Contains(text, want) {
				t.Errorf("slack text %q lacks %q", text, want)
			}
		}

		hooks := hook.requests()
		if len(hooks) != 1 {
			t.Fatalf("webhook got %d calls, want 1", len(hooks))
		}
		h := hooks[0]
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
		if s, w := rec.get("slack delivered"), rec.get("webhook delivered"); s != 1 || w != 1 {
			t.Errorf("delivered %d to slack and %d to the webhook, want 1 each", s, w)
		}
	})
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

// TestRetries: retried answers are retried after the backoff, doubling,
// up to Attempts; the rest are final at once.
func TestRetries(t *testing.T) {
	tests := []struct {
		name        string
		codes       []int
		wantAfter   []time.Duration // when each request came, from the first
		wantOutcome string
	}{
		{"5xx then success", []int{502, 503, 200}, []time.Duration{0, time.Second, 3 * time.Second}, "delivered"},
		{"429 is retried", []int{429, 204}, []time.Duration{0, time.Second}, "delivered"},
		{"4xx is final", []int{400}, []time.Duration{0}, "failed"},
		{"gives up after attempts", []int{500, 500, 500, 500}, []time.Duration{0, time.Second, 3 * time.Second}, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var after []time.Duration
				start := time.Now()
				host := newFakeHost(tt.codes...)
				timed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					after = append(after, time.Since(start))
					mu.Unlock()
					host.ServeHTTP(w, r)
				})
				rec := newCounts()
				n := newNotifier(t, fakeNet{"slack.test": timed}, config.Project{Notify: config.Notify{Slack: []string{"http://slack.test/x"}}},
					Options{Attempts: 3, Backoff: time.Second, Recorder: rec})
				n.JobChanged(testJob(job.Succeeded))
				rec.waitFor("slack "+tt.wantOutcome, 1)
				synctest.Wait() // and nothing after it
				mu.Lock()
				defer mu.Unlock()
				if diff := cmp.Diff(tt.wantAfter, after); diff != "" {
					t.Errorf("requests at (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestHangingEndpointNeverBlocksTheJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		rec := newCounts()
		n := newNotifier(t, fakeNet{"slack.test": hang}, config.Project{Notify: config.Notify{Slack: []string{"http://slack.test/x"}}},
			Options{Timeout: time.Hour, Queue: 2, Workers: 1, Recorder: rec})
		t.Cleanup(func() { close(release) }) // runs before the notifier's shutdown

		// Far more calls than the queue holds, while the endpoint answers
		// none: every JobChanged must still return, without the clock
		// moving (no call has timed out).
		returned := make(chan struct{})
		go func() {
			for i := 0; i < 50; i++ {
				n.JobChanged(testJob(job.Succeeded))
			}
			close(returned)
		}()
		synctest.Wait()
		select {
		case <-returned:
		default:
			t.Fatal("JobChanged blocked on an endpoint that never answers")
		}
		if d := rec.get("slack dropped"); d < 50-3 {
			t.Errorf("%d calls dropped, want at least 47 (queue of 2 plus one in flight)", d)
		}
	})
}

func TestShutdownDrainsQueue(t *testing.T) {
	host := newFakeHost()
	rec := newCounts()
	cfg := &config.Config{Projects: []config.Project{{Name: "shop", Notify: config.Notify{Slack: []string{"http://slack.test/x"}, On: config.DefaultNotifyOn}}}}
	n := New(cfg, Options{Client: fakeNet{"slack.test": host}.client(), Recorder: rec})
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
	synctest.Test(t, func(t *testing.T) {
		host := newFakeHost(401, 401)
		var logs bytes.Buffer
		const token, hookSecret = "ghp_SECRET_TOKEN_123", "B000/SECRETPATH"
		rec := newCounts()
		// slack.test is not on the network: its calls fail to connect,
		// and net/http's error would name the URL.
		n := newNotifier(t, fakeNet{"git.test": host}, config.Project{
			Status: &config.CommitStatus{Provider: "github", APIURL: "http://git.test", Token: token, Repo: "a/b", Context: "c"},
			Notify: config.Notify{Slack: []string{"http://slack.test/services/" + hookSecret}},
		}, Options{Attempts: 2, Recorder: rec, Log: zerolog.New(zerolog.SyncWriter(&logs))})
		n.JobChanged(testJob(job.Succeeded))
		rec.waitFor("status failed", 1)
		rec.waitFor("slack failed", 1)
		out := logs.String() // every log line is written before its outcome is counted
		if !strings.Contains(out, "notification failed") || !strings.Contains(out, "connection refused") {
			t.Fatalf("no failure logged: %s", out)
		}
		for _, secret := range []string{token, hookSecret} {
			if strings.Contains(out, secret) {
				t.Errorf("log reveals %q:\n%s", secret, out)
			}
		}
	})
}
