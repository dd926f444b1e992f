package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/swarmhook/swarmhook/chatops"
	"github.com/swarmhook/swarmhook/internal/testenv"
)

// Slack's example signing secret, from "Verifying requests from Slack";
// the server under test uses it, so Slack's own signed example is a
// request it would take but for its age.
const (
	slackDocSecret    = "8f742231b10e8888abcd99yyyzzz85a5"
	slackDocTimestamp = "1531420618"
	slackDocBody      = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	slackDocSignature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

// TestSlackCommandRunsARealJob: a signed /deploy command runs a real
// Swarm update and its result is posted to the response URL (a local
// server the config allows); Slack's documented example, replayed now,
// a badly signed command and a stale one are refused with 401 and start
// nothing, and so is a command whose response URL the config does not
// allow.
func TestSlackCommandRunsARealJob(t *testing.T) {
	t.Parallel()
	c := testenv.Require(t)
	ns := testenv.Unique("slack")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	svc := ns + "-web"
	initial := testenv.BuildAndPushDockerfile(t, c, fmt.Sprintf("%s/%s/app:init", testenv.Registry(), ns), "good v0", testenv.HealthyDockerfile)
	testenv.CreateService(t, c, svc, initial, testenv.ServiceOptions{})

	posted := make(chan slack.WebhookMessage, 10)
	respond := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m slack.WebhookMessage
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("posted %q: %v", b, err)
		}
		posted <- m
	}))
	t.Cleanup(respond.Close)

	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - name: slack
    repo: file:///nowhere.git
    secret: %s
    images: [{name: %s/app}]
    deploy: [{branch: main, services: [{name: %s, image: %s/app}], update: {monitor: 1s}}]
chat:
  slack:
    signing_secret: %s
    response_urls: [%q]
    users:
      - {id: UOPS, name: ops-in-slack, scopes: [deploy, read]}
`, testenv.Registry(), secret, ns, svc, ns, slackDocSecret, respond.URL+"/commands/"))

	send := func(body string, h http.Header) (int, map[string]any) {
		t.Helper()
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		code, raw := sh.Do(http.MethodPost, "/chat/slack", h, []byte(body))
		var m map[string]any
		json.Unmarshal(raw, &m)
		return code, m
	}
	signedAt := func(body string, at time.Time) http.Header {
		ts := strconv.FormatInt(at.Unix(), 10)
		return http.Header{"X-Slack-Request-Timestamp": {ts}, "X-Slack-Signature": {chatops.Sign(slackDocSecret, ts, []byte(body))}}
	}
	command := func(text, responseURL string) string {
		return url.Values{"team_id": {"T1"}, "user_id": {"UOPS"}, "user_name": {"ops"}, "command": {"/deploy"},
			"text": {text}, "response_url": {responseURL}}.Encode()
	}
	jobCount := func() int {
		code, raw := sh.API(http.MethodGet, "/api/jobs", nil)
		var list struct{ Jobs []testenv.Job }
		if code != http.StatusOK || json.Unmarshal(raw, &list) != nil {
			t.Fatalf("GET /api/jobs: %d %s", code, raw)
		}
		return len(list.Jobs)
	}

	refused := []struct {
		name   string
		body   string
		header http.Header
		want   int
	}{
		{"Slack's documented example, replayed today", slackDocBody, http.Header{"X-Slack-Request-Timestamp": {slackDocTimestamp}, "X-Slack-Signature": {slackDocSignature}}, http.StatusUnauthorized},
		{"stale", command("redeploy "+svc, respond.URL+"/commands/1"), signedAt(command("redeploy "+svc, respond.URL+"/commands/1"), time.Now().Add(-6*time.Minute)), http.StatusUnauthorized},
		{"badly signed", command("redeploy "+svc, respond.URL+"/commands/1"), signedAt(command("redeploy other", respond.URL+"/commands/1"), time.Now()), http.StatusUnauthorized},
		{"response URL not allowed", command("redeploy "+svc, "http://127.0.0.1:2375/containers/json"), signedAt(command("redeploy "+svc, "http://127.0.0.1:2375/containers/json"), time.Now()), http.StatusBadRequest},
	}
	for _, tt := range refused {
		if code, m := send(tt.body, tt.header); code != tt.want {
			t.Errorf("%s: %d %v, want %d", tt.name, code, m, tt.want)
		}
	}
	if n := jobCount(); n != 0 {
		t.Fatalf("%d jobs after refused requests, want none", n)
	}

	body := command("redeploy "+svc, respond.URL+"/commands/T1/1/secret-part")
	code, ack := send(body, signedAt(body, time.Now()))
	text, _ := ack["text"].(string)
	if code != http.StatusOK || ack["response_type"] != "ephemeral" || !strings.Contains(text, "started: redeploy of "+svc) {
		t.Fatalf("signed command: %d %v", code, ack)
	}
	var final slack.WebhookMessage
	select {
	case final = <-posted:
	case <-time.After(3 * time.Minute):
		t.Fatal("no result posted to the response URL")
	}
	if final.ResponseType != "in_channel" || !strings.Contains(final.Text, "succeeded") || !strings.Contains(final.Text, svc+": updated") {
		t.Errorf("result posted: %+v", final)
	}
	var list struct{ Jobs []map[string]any }
	_, raw := sh.API(http.MethodGet, "/api/jobs", nil)
	json.Unmarshal(raw, &list)
	if len(list.Jobs) != 1 || list.Jobs[0]["who"] != "ops-in-slack" || list.Jobs[0]["status"] != "succeeded" || list.Jobs[0]["action"] != "redeploy" {
		t.Errorf("jobs: %s", raw)
	}
	if strings.Contains(sh.Output(), "secret-part") {
		t.Error("the response URL, a credential for the channel, is in swarmhook's log")
	}
}
