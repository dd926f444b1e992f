package chatops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
)

// fakeActions records what commands asked and answers from its fields.
type fakeActions struct {
	mu    sync.Mutex
	calls []string
	err   error
	final *job.Job
	// waitErr is what Wait answers, when set.
	waitErr error
}

func (f *fakeActions) record(s string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(s, args...))
}

func (f *fakeActions) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeActions) Rollback(_ context.Context, who, service, tag string) (int64, error) {
	f.record("rollback %s %s %s", who, service, tag)
	return 42, f.err
}
func (f *fakeActions) Deploy(_ context.Context, who, project, branch, tag string) (int64, error) {
	f.record("deploy %s %s %s %s", who, project, branch, tag)
	return 42, f.err
}
func (f *fakeActions) Redeploy(_ context.Context, who, service string) (int64, error) {
	f.record("redeploy %s %s", who, service)
	return 42, f.err
}
func (f *fakeActions) Scale(_ context.Context, who, service string, n uint64) (int64, error) {
	f.record("scale %s %s %d", who, service, n)
	return 42, f.err
}
func (f *fakeActions) Promote(_ context.Context, who, project, from, to string) (int64, error) {
	f.record("promote %s %s %s %s", who, project, from, to)
	return 42, f.err
}
func (f *fakeActions) Approve(_ context.Context, who string, id int64) error {
	f.record("approve %s %d", who, id)
	return f.err
}
func (f *fakeActions) Reject(_ context.Context, who string, id int64) error {
	f.record("reject %s %d", who, id)
	return f.err
}
func (f *fakeActions) Freeze(_ context.Context, who, target, until, reason string) error {
	f.record("freeze %s %s %s %s", who, target, until, reason)
	return f.err
}
func (f *fakeActions) Job(_ context.Context, id int64) (*job.Job, error) {
	return &job.Job{ID: id, Project: "shop", Action: job.ActionRollback, Status: job.Running}, nil
}
func (f *fakeActions) Jobs(_ context.Context, n int) ([]*job.Job, error) {
	return []*job.Job{{ID: 2, Project: "shop", Status: job.Succeeded}}, nil
}
func (f *fakeActions) AwaitsApproval(j *job.Job) bool { return j.ID == 77 }

func (f *fakeActions) Wait(_ context.Context, _ string, id int64) (*job.Job, error) {
	if f.waitErr != nil {
		return nil, f.waitErr
	}
	if f.final != nil {
		return f.final, nil
	}
	return &job.Job{ID: id, Project: "shop", Action: job.ActionRollback, Status: job.Succeeded, Services: nil}, nil
}

// responses is a response URL that records what is posted to it.
type responses struct {
	srv  *httptest.Server
	msgs chan slack.WebhookMessage
}

func newResponses(t *testing.T) *responses {
	r := &responses{msgs: make(chan slack.WebhookMessage, 10)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var m slack.WebhookMessage
		b, _ := io.ReadAll(req.Body)
		json.Unmarshal(b, &m)
		r.msgs <- m
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *responses) next(t *testing.T) slack.WebhookMessage {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("nothing posted to the response URL")
		return slack.WebhookMessage{}
	}
}

const secret = "test-signing-secret-0123456789"

var now = time.Unix(1_800_000_000, 0)

func newHandler(t *testing.T, a Actions, responseBase string) *Slack {
	t.Helper()
	cfg := &config.Slack{SigningSecret: secret, ResponseURLs: []string{responseBase},
		Users: []config.SlackUser{
			{ID: "UDEPLOY", Scopes: []config.Scope{config.ScopeDeploy, config.ScopeRead}},
			{ID: "UADMIN", Team: "T1", Name: "ada", Scopes: []config.Scope{config.ScopeAdmin}},
		}}
	s, err := NewSlack(cfg, a, Options{Now: func() time.Time { return now }, AckWithin: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// slashBody is a slash command's form body.
func slashBody(team, user, text, responseURL string) []byte {
	return []byte(url.Values{"team_id": {team}, "user_id": {user}, "command": {"/deploy"}, "text": {text}, "response_url": {responseURL}}.Encode())
}

func signed(body []byte, at time.Time) http.Header {
	ts := strconv.FormatInt(at.Unix(), 10)
	return headers(Sign(secret, ts, body), ts)
}

func TestSlashCommandRunsAndPostsTheResult(t *testing.T) {
	resp := newResponses(t)
	a := &fakeActions{}
	s := newHandler(t, a, resp.srv.URL+"/")
	body := slashBody("T1", "UADMIN", "rollback shop_api main-20261126101500", resp.srv.URL+"/commands/T1/1/x")
	msg, err := s.Handle(context.Background(), signed(body, now), body)
	if err != nil {
		t.Fatal(err)
	}
	if msg.ResponseType != slack.ResponseTypeEphemeral || !strings.Contains(msg.Text, "Job 42 started") {
		t.Errorf("answer: %+v", msg)
	}
	final := resp.next(t)
	if final.ResponseType != slack.ResponseTypeInChannel || !strings.Contains(final.Text, "Job 42") || !strings.Contains(final.Text, "succeeded") {
		t.Errorf("result posted: %+v", final)
	}
	if diff := cmp.Diff([]string{"rollback ada shop_api main-20261126101500"}, a.Calls()); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
}

// TestCommandsMirrorTheCLI: each command line reaches its action with
// its arguments, typed as in chat or with the CLI's flags.
func TestCommandsMirrorTheCLI(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"rollback shop_api", "rollback ada shop_api "},
		{"rollback shop_api --to main-1", "rollback ada shop_api main-1"},
		{"deploy shop main", "deploy ada shop main "},
		{"deploy shop --branch main --tag main-1", "deploy ada shop main main-1"},
		{"deploy shop main main-1", "deploy ada shop main main-1"},
		{"redeploy shop_web", "redeploy ada shop_web"},
		{"scale shop_worker 5", "scale ada shop_worker 5"},
		{"promote shop staging production", "promote ada shop staging production"},
		{"approve 42", "approve ada 42"},
		{"reject #42", "reject ada 42"},
		{"freeze production 2026-12-27T08:00:00Z code freeze", "freeze ada production 2026-12-27T08:00:00Z code freeze"},
	} {
		t.Run(tt.text, func(t *testing.T) {
			resp := newResponses(t)
			a := &fakeActions{}
			s := newHandler(t, a, resp.srv.URL)
			body := slashBody("T1", "UADMIN", tt.text, resp.srv.URL+"/r")
			if _, err := s.Handle(context.Background(), signed(body, now), body); err != nil {
				t.Fatal(err)
			}
			if got := a.Calls(); len(got) != 1 || got[0] != tt.want {
				t.Errorf("actions %q, want [%q]", got, tt.want)
			}
		})
	}
}

// TestRefusedRequestsStartNothing: bad signatures, stale requests and
// response URLs outside the allowed prefixes are errors; unknown users,
// missing scopes and wrong arguments are answered; none calls an action
// or posts anywhere.
func TestRefusedRequestsStartNothing(t *testing.T) {
	resp := newResponses(t)
	ok := resp.srv.URL + "/commands/1"
	for _, tt := range []struct {
		name    string
		body    []byte
		header  func([]byte) http.Header
		wantErr error
		say     string
	}{
		{"bad signature", slashBody("T1", "UADMIN", "redeploy x", ok), func(b []byte) http.Header {
			return headers("v0="+strings.Repeat("0", 64), strconv.FormatInt(now.Unix(), 10))
		}, ErrSignature, ""},
		{"stale", slashBody("T1", "UADMIN", "redeploy x", ok), func(b []byte) http.Header { return signed(b, now.Add(-6*time.Minute)) }, ErrStale, ""},
		{"unsigned", slashBody("T1", "UADMIN", "redeploy x", ok), func([]byte) http.Header { return http.Header{} }, ErrUnsigned, ""},
		{"response url elsewhere", slashBody("T1", "UADMIN", "redeploy x", "http://169.254.169.254/latest/"), nil, ErrResponseURL, ""},
		{"unknown user", slashBody("T1", "UNOBODY", "redeploy x", ok), nil, nil, "may not run"},
		{"user of another team", slashBody("T2", "UADMIN", "redeploy x", ok), nil, nil, "may not run"},
		{"missing scope", slashBody("T1", "UDEPLOY", "rollback x", ok), nil, nil, `needs the "rollback" scope`},
		{"approve needs its scope", slashBody("T1", "UDEPLOY", "approve 42", ok), nil, nil, `needs the "approve" scope`},
		{"missing argument", slashBody("T1", "UADMIN", "scale x", ok), nil, nil, "Usage: scale SERVICE REPLICAS"},
		{"unknown flag", slashBody("T1", "UADMIN", "rollback x --force", ok), nil, nil, "Usage"},
		{"unknown command", slashBody("T1", "UADMIN", "destroy everything", ok), nil, nil, "Unknown command"},
		{"help", slashBody("T1", "UDEPLOY", "help", ok), nil, nil, "redeploy SERVICE"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &fakeActions{}
			s := newHandler(t, a, resp.srv.URL+"/commands/")
			h := signed(tt.body, now)
			if tt.header != nil {
				h = tt.header(tt.body)
			}
			msg, err := s.Handle(context.Background(), h, tt.body)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
			} else if err != nil || !strings.Contains(msg.Text, tt.say) || msg.ResponseType != slack.ResponseTypeEphemeral {
				t.Fatalf("answer %+v, %v; want one saying %q to the user alone", msg, err, tt.say)
			}
			if calls := a.Calls(); len(calls) != 0 {
				t.Errorf("actions called: %q", calls)
			}
		})
	}
	select {
	case m := <-resp.msgs:
		t.Errorf("posted: %+v", m)
	default:
	}
}

func TestResponseURLMustBeUnderAPrefix(t *testing.T) {
	r, err := newResponder([]string{config.DefaultSlackResponseURL, "http://127.0.0.1:9999/slack"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"https://hooks.slack.com/commands/T1/2/abc", true},
		{"https://HOOKS.slack.com/actions/T1/2/abc", true},
		{"http://127.0.0.1:9999/slack/x", true},
		{"http://hooks.slack.com/commands/T1", false},
		{"https://hooks.slack.com.evil.example/commands", false},
		{"https://hooks.slack.com@evil.example/commands", false},
		{"https://hooks.slack.com:8443/commands", false},
		{"https://evil.example/?https://hooks.slack.com/", false},
		{"http://127.0.0.1:9999/slackish", false},
		{"http://127.0.0.1:9999/slack/../admin", false},
		{"http://127.0.0.1:9998/slack/x", false},
		{"http://localhost:2375/containers/json", false},
		{"", false},
		{"/commands/x", false},
	} {
		if err := r.check(tt.url); (err == nil) != tt.ok {
			t.Errorf("check(%q) = %v, want allowed %v", tt.url, err, tt.ok)
		}
	}
}

// TestResponseURLErrorsNeverQuoteIt: a refused response URL's error
// (answered to the sender, maybe logged) says why without the URL,
// whose path and userinfo are credentials.
func TestResponseURLErrorsNeverQuoteIt(t *testing.T) {
	r, err := newResponder([]string{config.DefaultSlackResponseURL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ url, secret string }{
		{"https://user:s3cr3t-pass@hooks.slack.com/commands/T1/2/abc", "s3cr3t-pass"},
		{"https://hooks.slack.com/commands/T1/2/s3cr3t%zz", "s3cr3t"},
		{"::/s3cr3t-path", "s3cr3t"},
		{"/commands/T1/2/s3cr3t-token", "s3cr3t"},
		{"https://evil.example/commands/T1/2/s3cr3t-token", "s3cr3t"},
	} {
		err := r.check(tt.url)
		if !errors.Is(err, ErrResponseURL) {
			t.Errorf("check(%q) = %v, want ErrResponseURL", tt.url, err)
			continue
		}
		if strings.Contains(err.Error(), tt.secret) {
			t.Errorf("check's error quotes the URL: %v", err)
		}
	}
}

// TestRedirectsAreNotFollowed: an allowed response URL that redirects
// elsewhere does not make swarmhook post there.
func TestRedirectsAreNotFollowed(t *testing.T) {
	elsewhere := newResponses(t)
	redirecting := httptest.NewServer(http.RedirectHandler(elsewhere.srv.URL+"/x", http.StatusTemporaryRedirect))
	t.Cleanup(redirecting.Close)
	r, err := newResponder([]string{redirecting.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.post(context.Background(), redirecting.URL+"/r", message(inChannel, "hi")); err == nil {
		t.Error("a redirect answered as a success")
	}
	select {
	case m := <-elsewhere.msgs:
		t.Errorf("followed the redirect and posted %+v", m)
	default:
	}
}

// TestApprovalButton: a pressed Approve button runs "approve ID" as the
// presser, with the presser's scopes.
func TestApprovalButton(t *testing.T) {
	resp := newResponses(t)
	payload := func(user string) []byte {
		p, _ := json.Marshal(map[string]any{
			"type": "block_actions", "user": map[string]string{"id": user}, "team": map[string]string{"id": "T1"},
			"response_url": resp.srv.URL + "/actions/1",
			"actions":      []map[string]string{{"action_id": "approve", "block_id": "swarmhook-approval-42", "value": "42", "type": "button"}},
		})
		return []byte(url.Values{"payload": {string(p)}}.Encode())
	}
	a := &fakeActions{}
	s := newHandler(t, a, resp.srv.URL)
	body := payload("UADMIN")
	msg, err := s.Handle(context.Background(), signed(body, now), body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg.Text, "approved by ada") {
		t.Errorf("answer: %+v", msg)
	}
	if got := a.Calls(); !slices.Equal(got, []string{"approve ada 42"}) {
		t.Errorf("actions: %q", got)
	}
	resp.next(t) // the job's end
	body = payload("UDEPLOY")
	msg, _ = s.Handle(context.Background(), signed(body, now), body)
	if !strings.Contains(msg.Text, "needs the \"approve\" scope") || len(a.Calls()) != 1 {
		t.Errorf("a deploy-only user's press: %+v, actions %q", msg, a.Calls())
	}
	// The status of a job waiting for approval comes with the buttons;
	// another job's does not.
	for id, want := range map[int64]bool{77: true, 42: false} {
		body = slashBody("T1", "UADMIN", fmt.Sprintf("status %d", id), resp.srv.URL+"/r")
		msg, err = s.Handle(context.Background(), signed(body, now), body)
		if err != nil {
			t.Fatal(err)
		}
		blocks, _ := json.Marshal(msg.Blocks)
		for _, part := range []string{`"action_id":"approve"`, `"action_id":"reject"`, fmt.Sprintf(`"value":"%d"`, id)} {
			if strings.Contains(string(blocks), part) != want {
				t.Errorf("status %d: buttons %v, want %v: %s", id, !want, want, blocks)
			}
		}
	}
}

// TestSlowCommandsAreAnsweredAtOnce: a command still running after
// AckWithin is answered "working on it", and its answer posted later.
func TestSlowCommandsAreAnsweredAtOnce(t *testing.T) {
	resp := newResponses(t)
	release := make(chan struct{})
	a := &slowActions{fakeActions: &fakeActions{}, release: release}
	s := newHandler(t, a, resp.srv.URL)
	s.ackWithin = time.Millisecond
	body := slashBody("T1", "UADMIN", "redeploy shop_web", resp.srv.URL+"/r")
	msg, err := s.Handle(context.Background(), signed(body, now), body)
	close(release)
	if err != nil || !strings.Contains(msg.Text, "Working on it") {
		t.Fatalf("answer %+v, %v", msg, err)
	}
	if later := resp.next(t); !strings.Contains(later.Text, "Job 42 started") || later.ResponseType != slack.ResponseTypeEphemeral {
		t.Errorf("the late answer: %+v", later)
	}
	if final := resp.next(t); !strings.Contains(final.Text, "succeeded") {
		t.Errorf("the result: %+v", final)
	}
}

// slowActions hold a redeploy until release is closed.
type slowActions struct {
	*fakeActions
	release chan struct{}
}

func (s *slowActions) Redeploy(ctx context.Context, who, service string) (int64, error) {
	<-s.release
	return s.fakeActions.Redeploy(ctx, who, service)
}

// TestAJobNotFollowedIsSaid: when the job cannot be followed (too many
// are), the user is told so instead of waiting for a result that never
// comes.
func TestAJobNotFollowedIsSaid(t *testing.T) {
	resp := newResponses(t)
	a := &fakeActions{waitErr: errors.New("too many jobs followed")}
	s := newHandler(t, a, resp.srv.URL+"/")
	body := slashBody("T1", "UADMIN", "redeploy shop_api", resp.srv.URL+"/commands/T1/1/x")
	if _, err := s.Handle(context.Background(), signed(body, now), body); err != nil {
		t.Fatal(err)
	}
	if m := resp.next(t); !strings.Contains(m.Text, "not followed") || !strings.Contains(m.Text, "too many jobs followed") {
		t.Errorf("posted %+v, want it to say the job is not followed and why", m)
	}
}

// TestReplayedRequestsStartNothing: a signed request seen once is
// refused when it comes again inside the timestamp window, however its
// signature's hex is cased, so a captured command runs once.
func TestReplayedRequestsStartNothing(t *testing.T) {
	resp := newResponses(t)
	a := &fakeActions{}
	s := newHandler(t, a, resp.srv.URL+"/")
	body := slashBody("T1", "UADMIN", "redeploy shop_api", resp.srv.URL+"/commands/T1/1/x")
	h := signed(body, now)
	if _, err := s.Handle(context.Background(), h, body); err != nil {
		t.Fatal(err)
	}
	upper := headers("v0="+strings.ToUpper(strings.TrimPrefix(h.Get("X-Slack-Signature"), "v0=")), h.Get("X-Slack-Request-Timestamp"))
	for name, h := range map[string]http.Header{"as sent": h, "upper-case hex": upper} {
		if _, err := s.Handle(context.Background(), h, body); !errors.Is(err, ErrReplay) {
			t.Errorf("%s again: %v, want %v", name, err, ErrReplay)
		}
	}
	later := signed(body, now.Add(time.Second))
	if _, err := s.Handle(context.Background(), later, body); err != nil {
		t.Errorf("the same command sent again a second later: %v", err)
	}
	if n := len(a.Calls()); n != 2 {
		t.Errorf("%d actions run, want 2", n)
	}
}

// TestAWaitingJobIsSaidAsSuch: the wait for a job's end stops when it
// starts waiting (for an approval, a window or a freeze), at once; the
// message says it waits, not that it is still waiting after the whole
// follow time.
func TestAWaitingJobIsSaidAsSuch(t *testing.T) {
	resp := newResponses(t)
	a := &fakeActions{final: &job.Job{ID: 42, Project: "shop", Action: job.ActionPromote, Status: job.Waiting,
		Stage: &job.CurrentStage{Name: "waiting for approval"}}}
	s := newHandler(t, a, resp.srv.URL+"/")
	body := slashBody("T1", "UADMIN", "promote shop staging production", resp.srv.URL+"/commands/T1/1/x")
	if _, err := s.Handle(context.Background(), signed(body, now), body); err != nil {
		t.Fatal(err)
	}
	m := resp.next(t)
	if strings.Contains(m.Text, "after 30m") || !strings.Contains(m.Text, "waiting for approval") || !strings.Contains(m.Text, "status 42") {
		t.Errorf("posted %q, want it to say the job waits and how to ask again", m.Text)
	}
}
