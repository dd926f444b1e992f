package server

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/gate"
	"github.com/swarmhook/swarmhook/job"
)

// TestSlackApprovalsGoThroughTheGate: /deploy promote, approve and
// freeze take the API's paths: the chat user who started a job may not
// approve it, another with the approve scope may.
func TestSlackApprovalsGoThroughTheGate(t *testing.T) {
	cfg, err := config.Load(strings.NewReader(gateConfig+`
chat:
  slack:
    signing_secret: `+slackSecret+`
    response_urls: ["http://127.0.0.1:1/"]
    users:
      - {id: UADA, name: alice, scopes: [deploy, approve]}
      - {id: UBEA, name: bea, scopes: [approve]}
      - {id: UOPS, name: ops, scopes: [override]}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	st, logs := openStore(t)
	jobs := &fakeJobs{store: st}
	g := gate.New(cfg, gate.Options{Log: zerolog.Nop()})
	h := &handback{ended: map[int64]job.Status{}}
	g.Attach(h)
	s := New(Deps{Config: cfg, Jobs: jobs, Store: st, Logs: logs, Log: zerolog.Nop(), Gate: g})

	say := func(user, text string) string {
		rec, _ := slackRequestFrom(s, user, text, time.Now(), true)
		return rec.Body.String()
	}

	say("UADA", "promote shop staging production")
	if got := requests(jobs); len(got) != 1 || got[0].Action != job.ActionPromote || got[0].Environment != "production" || got[0].Who != "alice" {
		t.Fatalf("submitted %+v", got)
	}
	id := holdJob(t, st, g, "alice", 1)
	if body := say("UADA", "approve "+strconv.FormatInt(id, 10)); !strings.Contains(body, "may not be approved by who started it") {
		t.Errorf("alice approving her own job: %s", body)
	}
	if _, held := g.Held(id); !held {
		t.Fatal("a refused approval let the job go")
	}
	if body := say("UBEA", "approve "+strconv.FormatInt(id, 10)); !strings.Contains(body, "approved by bea") {
		t.Errorf("bea approving: %s", body)
	}
	if len(h.continued) != 1 || h.continued[0] != id {
		t.Errorf("continued %v, want job %d", h.continued, id)
	}
	if body := say("UOPS", "freeze production 2099-01-01T00:00:00Z launch"); !strings.Contains(body, "frozen until") {
		t.Errorf("freeze: %s", body)
	}
	if fs := g.Freezes(); len(fs) != 1 || fs[0].Who != "ops" || fs[0].Reason != "launch" {
		t.Errorf("freezes = %+v", fs)
	}
}
