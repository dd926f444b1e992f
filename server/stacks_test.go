package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
	"github.com/swarmhook/swarmhook/tagpolicy"
	"github.com/swarmhook/swarmhook/updater"
)

// fakeSwarm holds the state of each service it runs.
type fakeSwarm map[string]updater.Status

func (f fakeSwarm) Status(_ context.Context, service string) (updater.Status, error) {
	st, ok := f[service]
	if !ok {
		return updater.Status{}, &updater.NoServiceError{Service: service}
	}
	return st, nil
}

// fakeStacks runs the services of each stack it holds, or fails with err.
type fakeStacks struct {
	svcs map[string][]string
	err  error
}

func (f fakeStacks) Services(_ context.Context, stack string) ([]string, error) {
	return f.svcs[stack], f.err
}

const stackTargetConfig = `
registry: {host: "r:5000"}
tokens:
  - {name: boss, token: admin-token-0123456789, scopes: [admin]}
projects:
  - name: shop
    repo: x
    secret: s
    images: [{name: shop/api}]
    deploy:
      - branch: main
        stack: {name: vipay, file: deploy/compose.yml}
        services: [api]
      - branch: legacy
        services: [{name: old, image: shop/api}]
`

type stackFixture struct {
	s      *Server
	st     *store.SQLite
	jobs   *fakeJobs
	reg    fakeTags
	stacks *fakeStacks
}

func newStackFixture(t *testing.T) *stackFixture {
	t.Helper()
	cfg, err := config.Load(strings.NewReader(stackTargetConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	st, _ := openStore(t)
	f := &stackFixture{st: st, jobs: &fakeJobs{store: st}, reg: fakeTags{},
		stacks: &fakeStacks{svcs: map[string][]string{"vipay": {"vipay_api", "vipay_side"}}}}
	sw := fakeSwarm{
		"vipay_api":  {Name: "vipay_api", Image: "r:5000/shop/api:main-20261203100100@sha256:aa", Tag: "main-20261203100100", Digest: "sha256:aa", Running: 2, Desired: 2, UpdateState: "completed", Tasks: []updater.Task{{Node: "m1", State: "running"}}},
		"vipay_side": {Name: "vipay_side", Image: "redis:7@sha256:bb", Tag: "7", Digest: "sha256:bb", Running: 1, Desired: 1},
		"old":        {Name: "old", Image: "r:5000/shop/api:legacy-latest@sha256:cc", Running: 1, Desired: 1},
	}
	f.s = New(Deps{Config: cfg, Jobs: f.jobs, Store: st, Swarm: sw, Stacks: f.stacks, Registry: f.reg, Log: zerolog.Nop()})
	return f
}

func (f *stackFixture) do(method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer admin-token-0123456789")
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.s.ServeHTTP(rec, req)
	return rec
}

// TestListServicesShowsAStacksServices: GET /api/services lists a stack
// target's services by their Swarm names, as they run, with the same
// fields as every other managed service, and never the keys of the
// target's order; a stack that cannot be listed fails the answer rather
// than going missing from it.
func TestListServicesShowsAStacksServices(t *testing.T) {
	f := newStackFixture(t)
	rec := f.do(http.MethodGet, "/api/services", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/services: %d %s", rec.Code, rec.Body)
	}
	var got struct{ Services []updater.Status }
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	sw := f.s.d.Swarm.(fakeSwarm)
	want := []updater.Status{sw["vipay_api"], sw["vipay_side"], sw["old"]}
	if diff := cmp.Diff(want, got.Services); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}

	f.stacks.err = errors.New("engine: connection refused")
	if rec := f.do(http.MethodGet, "/api/services", ""); rec.Code != http.StatusBadGateway || !strings.Contains(rec.Body.String(), "connection refused") {
		t.Errorf("stacks unlisted: %d %s, want 502 saying why", rec.Code, rec.Body)
	}
}

// TestStackServiceTagsAndRollbackToATag: a stack service running one of
// the project's images offers the tags its branch's builds pushed, and a
// rollback to one of them is a job for that service alone; a service of
// the stack running another image has no candidates to offer.
func TestStackServiceTagsAndRollbackToATag(t *testing.T) {
	f := newStackFixture(t)
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	var tags []string
	for i, branch := range []string{"main", "main", "legacy"} {
		tag := tagpolicy.Timestamped(branch, at.Add(time.Duration(i)*time.Minute))
		tags = append(tags, tag)
		f.reg["shop/api"] = append(f.reg["shop/api"], tag)
	}
	ctx := context.Background()
	j := &job.Job{Project: "shop", Action: job.ActionBuild, Branch: "main", Status: job.Queued, Created: at}
	if err := f.st.Create(ctx, j, nil); err != nil {
		t.Fatal(err)
	}
	j.Status = job.Succeeded
	j.Images = []job.Image{{Name: "shop/api", Tag: tags[0], Digest: "sha256:a0"}}
	if err := f.st.Save(ctx, j); err != nil {
		t.Fatal(err)
	}

	rec := f.do(http.MethodGet, "/api/services/vipay_api/tags", "")
	var got struct {
		Repository string
		Tags       []RollbackTag
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); rec.Code != http.StatusOK || err != nil {
		t.Fatalf("tags of vipay_api: %d %s", rec.Code, rec.Body)
	}
	want := []RollbackTag{
		{Tag: tags[1], Status: TagUnknown, Branch: "main"},
		{Tag: tags[0], Status: TagSucceeded, Branch: "main", Job: j.ID},
	}
	if diff := cmp.Diff(want, got.Tags, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".At" }, cmp.Ignore())); diff != "" || got.Repository != "shop/api" {
		t.Errorf("tags of vipay_api in %s (-want +got):\n%s", got.Repository, diff)
	}
	if rec := f.do(http.MethodGet, "/api/services/vipay_side/tags", ""); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "redis:7") {
		t.Errorf("tags of vipay_side: %d %s, want 400 naming the image it runs", rec.Code, rec.Body)
	}

	if rec := f.do(http.MethodPost, "/api/services/vipay_api/rollback", `{"tag":"`+tags[0]+`"}`); rec.Code != http.StatusAccepted {
		t.Fatalf("rollback of vipay_api to %s: %d %s", tags[0], rec.Code, rec.Body)
	}
	wantReq := job.Request{Project: "shop", Action: job.ActionRollback, Trigger: job.TriggerRollback, Service: "vipay_api", Tag: tags[0], Who: "boss"}
	if diff := cmp.Diff([]job.Request{wantReq}, f.jobs.got); diff != "" {
		t.Errorf("submitted (-want +got):\n%s", diff)
	}
}

// TestTagDeployToAStackTargetIsRefused: a project-wide deploy of a tag
// to a branch that deploys a stack is a 400 saying why and what to do
// instead, and submits nothing; other branches' tag deploys still go.
func TestTagDeployToAStackTargetIsRefused(t *testing.T) {
	f := newStackFixture(t)
	tag := tagpolicy.Timestamped("main", time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	f.reg["shop/api"] = []string{tag, tagpolicy.Timestamped("legacy", time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))}
	rec := f.do(http.MethodPost, "/api/projects/shop/deploy", `{"branch":"main","tag":"`+tag+`"}`)
	for _, want := range []string{"deploys stack vipay", "deploy the branch head", "/api/services/vipay_api/rollback"} {
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("tag deploy to the stack target: %d %s, want 400 with %q", rec.Code, rec.Body, want)
		}
	}
	if len(f.jobs.got) != 0 {
		t.Errorf("a refused tag deploy submitted %+v", f.jobs.got)
	}
	if rec := f.do(http.MethodPost, "/api/projects/shop/deploy", `{"branch":"legacy","tag":"`+f.reg["shop/api"][1]+`"}`); rec.Code != http.StatusAccepted {
		t.Errorf("tag deploy to the image target: %d %s, want 202", rec.Code, rec.Body)
	}
}
