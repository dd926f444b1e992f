package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
	"github.com/swarmhook/swarmhook/webhook"
)

const (
	hookSecret = "hook-secret-do-not-log"
	commitA    = "a10867b14bb761a232cd80139fbd4c0d33264240"
	zero       = "0000000000000000000000000000000000000000"
)

const testConfig = `
registry: {host: "127.0.0.1:5000"}
webhook: {max_body_bytes: 4096}
projects:
  - name: shop
    repo: file:///srv/shop.git
    secret: hook-secret-do-not-log
    branches: [main, "feature/**"]
    tags: ["v*"]
    images: [{name: shop}]
  - name: plain
    repo: file:///srv/plain.git
    secret: hook-secret-do-not-log
    images: [{name: plain}]
  - name: open
    repo: file:///srv/open.git
    allow_unsigned: true
    images: [{name: open}]
  - name: closed
    repo: file:///srv/closed.git
    images: [{name: closed}]
  - name: signed
    repo: file:///srv/signed.git
    secret: whsec_c2lnbmluZy10b2tlbi1kby1ub3QtbG9n
    images: [{name: signed}]
tokens:
  - {name: reader, token: reader-token-0123456789, scopes: [read]}
`

// syncBuffer is a log sink safe for concurrent requests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// delivery is one request to /hooks/{project}.
type delivery struct {
	project string
	header  http.Header
	body    []byte
	remote  string
}

func (f *fixture) send(d delivery) (int, map[string]any) {
	req := httptest.NewRequest(http.MethodPost, "/hooks/"+d.project, bytes.NewReader(d.body))
	req.Header = d.header.Clone()
	if d.remote != "" {
		req.RemoteAddr = d.remote + ":40000"
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	var out map[string]any
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func githubPush(ref, after, message string) []byte {
	b, _ := json.Marshal(map[string]any{"ref": ref, "before": zero, "after": after,
		"pusher": map[string]string{"name": "tess"}, "head_commit": map[string]string{"id": after, "message": message}})
	return b
}

func signedGitHub(event, id string, body []byte) http.Header {
	h := http.Header{}
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Delivery", id)
	h.Set("X-Hub-Signature-256", webhook.Sign(hookSecret, body))
	return h
}

// gh is a signed GitHub delivery to project shop.
func gh(event string, body []byte) delivery {
	return delivery{project: "shop", header: signedGitHub(event, "", body), body: body}
}

func TestHookDeliveries(t *testing.T) {
	mainPush := githubPush("refs/heads/main", commitA, "fix")
	bitbucket := []byte(`{"push":{"changes":[
		{"new":{"type":"branch","name":"main","target":{"hash":"` + commitA + `","message":"m"}}},
		{"new":null,"old":{"type":"branch","name":"feature/old","target":{"hash":"` + commitA + `"}},"closed":true},
		{"new":{"type":"branch","name":"feature/x","target":{"hash":"` + commitA + `","message":"x"}}}]},
		"actor":{"nickname":"emma"}}`)
	bbHeader := http.Header{"X-Event-Key": {"repo:push"}, "X-Hub-Signature": {webhook.Sign(hookSecret, bitbucket)}}
	unsigned := []byte(`{"branch":"main","commit":"` + commitA + `"}`)
	tests := []struct {
		name     string
		d        delivery
		want     int
		wantBody map[string]any
		// errHas is text the error answer must contain.
		errHas string
		reqs   []job.Request
	}{
		{name: "branch push queues a job", d: gh("push", mainPush), want: 202, wantBody: map[string]any{"job": 1.0},
			reqs: []job.Request{{Project: "shop", Trigger: job.TriggerPush, Ref: "refs/heads/main", Branch: "main", Commit: commitA, Who: "tess"}}},
		{name: "ping", d: gh("ping", []byte(`{"zen":"Keep it logically awesome."}`)), want: 200, wantBody: map[string]any{"ignored": "ping"}},
		{name: "unsupported event", d: gh("issues", []byte(`{}`)), want: 200, wantBody: map[string]any{"ignored": `github event "issues" is not a push`}},
		{name: "branch deletion never builds", d: gh("push", githubPush("refs/heads/main", zero, "")), want: 200,
			wantBody: map[string]any{"ignored": "refs/heads/main was deleted"}},
		{name: "tag ignored without tags", d: delivery{project: "plain", header: signedGitHub("push", "", githubPush("refs/tags/v1", commitA, "")), body: githubPush("refs/tags/v1", commitA, "")},
			want: 200, wantBody: map[string]any{"ignored": "tag v1: the project builds no tags (see tags:)"}},
		{name: "tag matching tags builds under the tag's name", d: gh("push", githubPush("refs/tags/v1.2", commitA, "release")), want: 202, wantBody: map[string]any{"job": 1.0},
			reqs: []job.Request{{Project: "shop", Trigger: job.TriggerPush, Ref: "refs/tags/v1.2", Branch: "v1.2", Commit: commitA, Who: "tess"}}},
		{name: "tag matching no tag glob", d: gh("push", githubPush("refs/tags/nightly", commitA, "")), want: 200,
			wantBody: map[string]any{"ignored": "tag nightly matches none of the project's tags"}},
		{name: "branch matching no glob", d: gh("push", githubPush("refs/heads/dev", commitA, "")), want: 200,
			wantBody: map[string]any{"ignored": "branch dev matches none of the project's branches"}},
		{name: "skip ci", d: gh("push", githubPush("refs/heads/main", commitA, "docs [skip ci]")), want: 200,
			wantBody: map[string]any{"ignored": "refs/heads/main: head commit asks to skip CI"}},
		{name: "ci skip", d: gh("push", githubPush("refs/heads/main", commitA, "wip\n\n[ci skip]")), want: 200,
			wantBody: map[string]any{"ignored": "refs/heads/main: head commit asks to skip CI"}},
		{name: "one job per changed branch", d: delivery{project: "shop", header: bbHeader, body: bitbucket}, want: 202,
			wantBody: map[string]any{"job": 1.0, "jobs": []any{1.0, 2.0}, "ignored": "refs/heads/feature/old was deleted"},
			reqs: []job.Request{
				{Project: "shop", Trigger: job.TriggerPush, Ref: "refs/heads/main", Branch: "main", Commit: commitA, Who: "emma"},
				{Project: "shop", Trigger: job.TriggerPush, Ref: "refs/heads/feature/x", Branch: "feature/x", Commit: commitA, Who: "emma"},
			}},
		{name: "wrong signature", d: delivery{project: "shop", header: http.Header{"X-Github-Event": {"push"}, "X-Hub-Signature-256": {webhook.Sign("guess", mainPush)}}, body: mainPush},
			want: 401, errHas: "signature missing or invalid"},
		{name: "missing signature", d: delivery{project: "shop", header: http.Header{"X-Github-Event": {"push"}}, body: mainPush}, want: 401, errHas: "no signature header"},
		{name: "no secret refuses unsigned", d: delivery{project: "closed", header: http.Header{}, body: unsigned}, want: 401, errHas: "unsigned deliveries are refused"},
		{name: "allow_unsigned takes unsigned", d: delivery{project: "open", header: http.Header{}, body: unsigned}, want: 202, wantBody: map[string]any{"job": 1.0},
			reqs: []job.Request{{Project: "open", Trigger: job.TriggerPush, Ref: "refs/heads/main", Branch: "main", Commit: commitA}}},
		{name: "truncated JSON", d: gh("push", mainPush[:30]), want: 400, errHas: "github push body is truncated JSON"},
		{name: "wrong JSON type", d: gh("push", []byte(`{"ref":["main"]}`)), want: 400, errHas: `field "ref" is a JSON array, want a string`},
		{name: "unknown project", d: delivery{project: "nope", header: signedGitHub("push", "", mainPush), body: mainPush}, want: 404, errHas: `unknown project: "nope"`},
		{name: "body over the limit", d: gh("push", bytes.Repeat([]byte(" "), 4097)), want: 413, errHas: "4097 bytes declared, the limit is 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			code, body := f.send(tt.d)
			if code != tt.want {
				t.Fatalf("status %d %v, want %d", code, body, tt.want)
			}
			if tt.wantBody != nil {
				if diff := cmp.Diff(tt.wantBody, body); diff != "" {
					t.Errorf("answer (-want +got):\n%s", diff)
				}
			}
			if tt.errHas != "" {
				if msg, _ := body["error"].(string); !strings.Contains(msg, tt.errHas) {
					t.Errorf("error %q does not say %q", msg, tt.errHas)
				}
			}
			if diff := cmp.Diff(tt.reqs, f.submitted(t)); diff != "" {
				t.Errorf("submitted (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPushJoiningAWaitingBuildSaysCoalesced(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		ref, delivery string
		want          map[string]any
	}{
		{ref: "refs/heads/main", delivery: "d-1", want: map[string]any{"job": 1.0}},
		{ref: "refs/heads/main", delivery: "d-2", want: map[string]any{"job": 1.0, "coalesced": true}},
		{ref: "refs/heads/feature/x", delivery: "d-3", want: map[string]any{"job": 2.0}},
	}
	for _, tt := range tests {
		body := githubPush(tt.ref, commitA, "")
		code, a := f.send(delivery{project: "shop", header: signedGitHub("push", tt.delivery, body), body: body})
		if code != 202 {
			t.Fatalf("%s: status %d %v, want 202", tt.delivery, code, a)
		}
		if diff := cmp.Diff(tt.want, a); diff != "" {
			t.Errorf("%s: answer (-want +got):\n%s", tt.delivery, diff)
		}
	}
	// The joining delivery is remembered with the job it joined.
	body := githubPush("refs/heads/main", commitA, "")
	if code, a := f.send(delivery{project: "shop", header: signedGitHub("push", "d-2", body), body: body}); code != 200 || a["job"] != 1.0 {
		t.Errorf("redelivery of the joining push: %d %v, want 200 naming job 1", code, a)
	}
}

func TestHookQueueFullIsRetryable(t *testing.T) {
	f := newFixture(t)
	f.jobs.err = job.ErrQueueFull
	d := gh("push", githubPush("refs/heads/main", commitA, ""))
	d.header.Set("X-GitHub-Delivery", "full-1")
	if code, body := f.send(d); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d %v, want 503", code, body)
	}
	// Not remembered: once there is room, the retry builds.
	f.jobs.err = nil
	if code, body := f.send(d); code != http.StatusAccepted {
		t.Fatalf("retry: status %d %v, want 202", code, body)
	}
}

func TestHookStoreTroubleIsRetryableAndSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"data_dir full", fmt.Errorf("record job: %w: create job: database or disk is full (13)", store.ErrFull), "data_dir full: create job: database or disk is full"},
		{"disk error", fmt.Errorf("record job: %w: commit: disk I/O error (10)", store.ErrIO), "data_dir i/o error"},
		{"database corrupt", fmt.Errorf("record job: %w: database disk image is malformed (11)", store.ErrCorrupt), "database corrupt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.jobs.err = tc.err
			code, body := f.send(gh("push", githubPush("refs/heads/main", commitA, "")))
			if msg, _ := body["error"].(string); code != http.StatusServiceUnavailable || !strings.Contains(msg, tc.want) {
				t.Errorf("status %d %v, want 503 saying %q", code, body, tc.want)
			}
		})
	}
}

func TestRedeliveryBuildsNothing(t *testing.T) {
	f := newFixture(t)
	body := githubPush("refs/heads/main", commitA, "")
	first := delivery{project: "shop", header: signedGitHub("push", "d-1", body), body: body}
	if code, a := f.send(first); code != 202 || a["job"] != 1.0 {
		t.Fatalf("first delivery: %d %v", code, a)
	}
	f.clock = f.clock.Add(23 * time.Hour)
	code, a := f.send(first)
	if code != 200 || a["job"] != 1.0 || !strings.Contains(fmt.Sprint(a["ignored"]), "redelivery of d-1") {
		t.Errorf("redelivery: %d %v, want 200 naming job 1", code, a)
	}
	// The same id to another project is another delivery.
	other := delivery{project: "plain", header: first.header, body: body}
	if code, a := f.send(other); code != 202 || a["job"] != 2.0 {
		t.Errorf("same id, other project: %d %v, want a new job", code, a)
	}
	if n := len(f.submitted(t)); n != 2 {
		t.Errorf("%d jobs submitted, want 2", n)
	}
	// A day after the first it is a new delivery again: it joins the
	// build of main that still waits.
	f.clock = f.clock.Add(2 * time.Hour)
	if code, a := f.send(first); code != 202 || a["job"] != 1.0 || a["coalesced"] != true {
		t.Errorf("after 25h: %d %v, want it to join job 1", code, a)
	}
}

// signedGitLab is a push to project signed from a GitLab hook with a
// signing token: webhook-id id is signed, Idempotency-Key key is not.
func signedGitLab(t *testing.T, at time.Time, id, key, commit string) delivery {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"object_kind": "push", "ref": "refs/heads/main", "before": zero,
		"after": commit, "checkout_sha": commit, "user_username": "tess"})
	sig, err := webhook.SignStandard("whsec_c2lnbmluZy10b2tlbi1kby1ub3QtbG9n", id, at, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("X-Gitlab-Event", "Push Hook")
	h.Set("Idempotency-Key", key)
	h.Set("Webhook-Id", id)
	h.Set("Webhook-Timestamp", fmt.Sprint(at.Unix()))
	h.Set("Webhook-Signature", sig)
	return delivery{project: "signed", header: h, body: body}
}

// withHeader is d with header k set to v.
func withHeader(d delivery, k, v string) delivery {
	d.header = d.header.Clone()
	d.header.Set(k, v)
	return d
}

// TestSignedGitLabDeliveriesAreKnownByTheirSignedID: a delivery signed
// with a whsec_ token is deduplicated by the webhook-id its signature
// covers, so resending a captured delivery under another (unsigned)
// Idempotency-Key cannot make a later real push look like a redelivery.
func TestSignedGitLabDeliveriesAreKnownByTheirSignedID(t *testing.T) {
	f := newFixture(t)
	commitB := strings.Repeat("b", 40)
	first := signedGitLab(t, f.clock, "msg_1", "key_1", commitA)
	if code, a := f.send(first); code != 202 || a["job"] != 1.0 {
		t.Fatalf("first delivery: %d %v", code, a)
	}
	// Another signed delivery that happens to carry the same unsigned key
	// is a push of its own (it joins the first, which still waits).
	if code, a := f.send(signedGitLab(t, f.clock, "msg_2", "key_1", commitB)); code != 202 || a["coalesced"] != true {
		t.Errorf("same Idempotency-Key, another webhook-id: %d %v, want a push that joins job 1", code, a)
	}
	// The first delivery resent under the key the next real push carries
	// is a redelivery of msg_1...
	if code, a := f.send(withHeader(first, "Idempotency-Key", "key_3")); code != 200 || !strings.Contains(fmt.Sprint(a["ignored"]), "redelivery of msg_1") {
		t.Errorf("replay under another Idempotency-Key: %d %v, want a redelivery of msg_1", code, a)
	}
	// ...and that push still counts.
	if code, a := f.send(signedGitLab(t, f.clock, "msg_3", "key_3", commitA)); code != 202 || a["coalesced"] != true {
		t.Errorf("real push after the replay: %d %v, want a push that joins job 1", code, a)
	}
	// A webhook-id the signature does not cover is refused.
	if code, a := f.send(withHeader(first, "Webhook-Id", "msg_4")); code != http.StatusUnauthorized {
		t.Errorf("forged webhook-id: %d %v, want 401", code, a)
	}
	if j, ok := f.runner.Waiting(1); !ok || j.Pushes != 3 {
		t.Errorf("job 1 waits with %+v, want 3 pushes", j)
	}
}

func TestConcurrentRedeliveriesBuildOnce(t *testing.T) {
	f := newFixture(t)
	body := githubPush("refs/heads/main", commitA, "")
	d := delivery{project: "shop", header: signedGitHub("push", "race-1", body), body: body}
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); code, _ := f.send(d); codes <- code }()
	}
	wg.Wait()
	close(codes)
	accepted := 0
	for c := range codes {
		if c == http.StatusAccepted {
			accepted++
		} else if c != http.StatusOK {
			t.Errorf("status %d", c)
		}
	}
	if n := len(f.submitted(t)); n != 1 || accepted != 1 {
		t.Errorf("%d jobs, %d answers 202; want exactly one", n, accepted)
	}
}

func TestSignatureFailuresAreRateLimited(t *testing.T) {
	f := newFixture(t)
	body := githubPush("refs/heads/main", commitA, "")
	bad := delivery{project: "shop", header: http.Header{"X-Github-Event": {"push"}, "X-Hub-Signature-256": {webhook.Sign("guess", body)}}, body: body, remote: "192.0.2.7"}
	good := delivery{project: "shop", header: signedGitHub("push", "", body), body: body, remote: "192.0.2.7"}
	for i := range failureBurst {
		if code, _ := f.send(bad); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i+1, code)
		}
	}
	if code, a := f.send(bad); code != http.StatusTooManyRequests || !strings.Contains(fmt.Sprint(a["error"]), "too many failed signature checks") {
		t.Errorf("after %d failures: %d %v, want 429", failureBurst, code, a)
	}
	if code, _ := f.send(good); code != http.StatusTooManyRequests {
		t.Errorf("a good delivery from a blocked address: %d, want 429", code)
	}
	good.remote = "198.51.100.1"
	if code, _ := f.send(good); code != http.StatusAccepted {
		t.Errorf("another address: %d, want 202", code)
	}
	// Forwarding headers do not change who is asking.
	bad.header.Set("X-Forwarded-For", "203.0.113.9")
	if code, _ := f.send(bad); code != http.StatusTooManyRequests {
		t.Errorf("X-Forwarded-For sidestepped the limit: %d", code)
	}
	f.clock = f.clock.Add(failureRefill)
	if code, _ := f.send(bad); code != http.StatusUnauthorized {
		t.Errorf("after %s: %d, want one more try (401)", failureRefill, code)
	}
	if code, _ := f.send(bad); code != http.StatusTooManyRequests {
		t.Errorf("and then: %d, want 429 again", code)
	}
}

func TestFailureLimiterMemoryIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newFailureLimiter(func() time.Time { return now })
	for i := range maxTrackedAddrs + 500 {
		l.fail(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
	if n := len(l.byAddr); n > maxTrackedAddrs {
		t.Errorf("tracking %d addresses, bound is %d", n, maxTrackedAddrs)
	}
	// A blocked address stays blocked while its budget is spent.
	for range failureBurst {
		l.fail("192.0.2.1")
	}
	if l.allow("192.0.2.1") {
		t.Error("address with spent budget allowed")
	}
}

// countingReader counts what the server reads of a body.
type countingReader struct {
	n    int64
	left int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	for i := range p {
		p[i] = ' '
	}
	c.n += int64(len(p))
	c.left -= int64(len(p))
	return len(p), nil
}

func TestOversizedBodyIsNotRead(t *testing.T) {
	const limit = 4096
	for _, declared := range []bool{true, false} {
		t.Run(fmt.Sprintf("length declared %v", declared), func(t *testing.T) {
			f := newFixture(t)
			body := &countingReader{left: 10 << 20}
			req := httptest.NewRequest(http.MethodPost, "/hooks/shop", body)
			req.Header.Set("X-GitHub-Event", "push")
			req.ContentLength = -1
			if declared {
				req.ContentLength = 10 << 20
			}
			rec := httptest.NewRecorder()
			f.srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d %s, want 413", rec.Code, rec.Body)
			}
			max := int64(limit + 1)
			if declared {
				max = 0
			}
			if body.n > max {
				t.Errorf("read %d bytes of a 10 MiB body, want at most %d", body.n, max)
			}
		})
	}
}
