package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/chatops"
	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
)

const slackSecret = "slack-signing-secret-0123456789"

func newSlackServer(t *testing.T) (*Server, *fakeJobs) {
	t.Helper()
	cfg, err := config.Load(strings.NewReader(`
registry: {host: "r:5000"}
projects:
  - name: shop
    repo: x
    secret: `+testSecret+`
    images: [{name: shop/api}]
    deploy: [{branch: main, services: [{name: shop_api, image: shop/api}]}]
chat:
  slack:
    signing_secret: `+slackSecret+`
    response_urls: ["http://127.0.0.1:1/"]
    users:
      - {id: UADA, name: ada, scopes: [deploy, scale]}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	st, logs := openStore(t)
	jobs := &fakeJobs{store: st}
	return New(Deps{Config: cfg, Jobs: jobs, Store: st, Logs: logs, Log: zerolog.Nop()}), jobs
}

func slackRequest(s *Server, text string, at time.Time, sign bool) (*httptest.ResponseRecorder, map[string]any) {
	return slackRequestFrom(s, "UADA", text, at, sign)
}

// slackRequestFrom is slackRequest from Slack user user.
func slackRequestFrom(s *Server, user, text string, at time.Time, sign bool) (*httptest.ResponseRecorder, map[string]any) {
	body := url.Values{"team_id": {"T1"}, "user_id": {user}, "command": {"/deploy"}, "text": {text}, "response_url": {"http://127.0.0.1:1/commands/1"}}.Encode()
	req := httptest.NewRequest(http.MethodPost, "/chat/slack", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	ts := strconv.FormatInt(at.Unix(), 10)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	if sign {
		req.Header.Set("X-Slack-Signature", chatops.Sign(slackSecret, ts, []byte(body)))
	} else {
		req.Header.Set("X-Slack-Signature", "v0="+strings.Repeat("ab", 32))
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var m map[string]any
	json.Unmarshal(rec.Body.Bytes(), &m)
	return rec, m
}

// TestSlackCommandsTakeTheAPIsPath: a Slack command becomes the job
// request the API would make, under the Slack user's name, and is
// refused with the API's reasons; unsigned or stale requests are 401 and
// start nothing.
func TestSlackCommandsTakeTheAPIsPath(t *testing.T) {
	s, jobs := newSlackServer(t)
	rec, m := slackRequest(s, "redeploy shop_api", time.Now(), true)
	if rec.Code != http.StatusOK || !strings.Contains(m["text"].(string), "started: redeploy of shop_api") {
		t.Fatalf("redeploy: %d %s", rec.Code, rec.Body)
	}
	if got := requests(jobs); len(got) != 1 || got[0].Who != "ada" || got[0].Action != job.ActionRedeploy || got[0].Service != "shop_api" {
		t.Errorf("submitted %+v", got)
	}
	for _, tt := range []struct{ text, say string }{
		{"scale shop_api 5000", "replicas must be given, 0 to 1000"},
		{"redeploy other", `service "other" is in no deploy target`},
		{"promote shop staging production", `has no environment "staging"`},
	} {
		rec, m := slackRequest(s, tt.text, time.Now(), true)
		if rec.Code != http.StatusOK || !strings.Contains(m["text"].(string), tt.say) {
			t.Errorf("%s: %d %s, want an answer saying %q", tt.text, rec.Code, rec.Body, tt.say)
		}
	}
	for name, rec := range map[string]*httptest.ResponseRecorder{
		"badly signed": func() *httptest.ResponseRecorder {
			r, _ := slackRequest(s, "redeploy shop_api", time.Now(), false)
			return r
		}(),
		"stale": func() *httptest.ResponseRecorder {
			r, _ := slackRequest(s, "redeploy shop_api", time.Now().Add(-10*time.Minute), true)
			return r
		}(),
	} {
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s: %d %s, want 401", name, rec.Code, rec.Body)
		}
	}
	if got := requests(jobs); len(got) != 1 {
		t.Errorf("%d jobs submitted, want only the first redeploy's", len(got))
	}
}

func TestNoSlackRouteWithoutItsConfig(t *testing.T) {
	s, _, _, _ := newTestServer(t)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/chat/slack", strings.NewReader("text=x")))
	if rec.Code != http.StatusNotFound {
		t.Errorf("POST /chat/slack without chat.slack: %d", rec.Code)
	}
}

func requests(f *fakeJobs) []job.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]job.Request(nil), f.got...)
}

// TestSlackFollowsTakeAFollowerSlot: following a job for Slack holds a
// slot under the Slack user's name, as ?wait=1 does under a token's, so
// chat commands cannot leave more jobs followed than the API allows.
func TestSlackFollowsTakeAFollowerSlot(t *testing.T) {
	s, _ := newSlackServer(t)
	j := &job.Job{Project: "shop", Status: job.Queued, Created: time.Now()}
	if err := s.d.Store.(*store.SQLite).Create(context.Background(), j, nil); err != nil {
		t.Fatal(err)
	}
	var held []func()
	for {
		release, err := s.followers.acquire("ada")
		if err != nil {
			break
		}
		held = append(held, release)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := (chatActions{s}).Wait(ctx, "ada", j.ID); !errors.Is(err, errRateLimited) {
		t.Errorf("follow with ada's slots all taken: %v, want %v", err, errRateLimited)
	}
	for _, r := range held {
		r()
	}
	done := make(chan error, 1)
	go func() {
		_, err := (chatActions{s}).Wait(context.Background(), "ada", j.ID)
		done <- err
	}()
	waitFor(t, "the follow's slot", func() bool { return s.followers.count() == 1 })
	j.Status = job.Succeeded
	if err := s.d.Store.(*store.SQLite).Save(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := s.followers.count(); n != 0 {
		t.Errorf("%d follower slots held after the job ended", n)
	}
}

// TestSlackApprovalScopesAreTheAskingUsers: two entries share a name
// (one member in two workspaces) with different scopes; an approval by
// that name carries only the scopes both have, so the entry with
// approve cannot approve a target whose approval needs admin.
func TestSlackApprovalScopesAreTheAskingUsers(t *testing.T) {
	s, _ := newSlackServer(t)
	s.d.Config.Chat.Slack.Users = []config.SlackUser{
		{ID: "U1", Team: "T1", Scopes: []config.Scope{config.ScopeApprove, config.ScopeRead}},
		{ID: "U1", Team: "T2", Scopes: []config.Scope{config.ScopeAdmin}},
		{ID: "U2", Name: "bo", Scopes: []config.Scope{config.ScopeAdmin}},
	}
	a := chatActions{s}
	if got := a.scopes("slack:U1"); slices.Contains(got, config.ScopeAdmin) || !slices.Contains(got, config.ScopeApprove) {
		t.Errorf("scopes of slack:U1 = %v, want approve and read but not admin", got)
	}
	if got := a.scopes("bo"); !slices.Contains(got, config.ScopeAdmin) {
		t.Errorf("scopes of bo = %v, want admin", got)
	}
}
