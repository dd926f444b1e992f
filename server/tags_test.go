package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
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

// fakeTags is a registry holding a fixed list of tags per repository.
type fakeTags map[string][]string

func (f fakeTags) Tags(_ context.Context, repo string) ([]string, error) { return f[repo], nil }
func (f fakeTags) Host() string                                          { return "r:5000" }

const tagsConfig = `
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
        environment: staging
        services: [{name: api, image: shop/api}]
      - environment: production
        promote_from: staging
        services: [{name: prod_api, image: shop/api}]
      - environment: vault
        promote_from: staging
        approve: {scope: approve}
        services: [{name: vault_api, image: shop/api}]
      - branch: "release/*"
        services: [{name: rel, image: shop/api}]
      - branch: "{stable,LTS}"
        services: [{name: lts, image: shop/api}]
`

// tagsFixture is a server over a real store holding the builds that
// pushed some of a repository's tags.
type tagsFixture struct {
	s   *Server
	st  *store.SQLite
	reg fakeTags
	at  time.Time
}

func newTagsFixture(t *testing.T) *tagsFixture {
	t.Helper()
	cfg, err := config.Load(strings.NewReader(tagsConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &tagsFixture{st: st, reg: fakeTags{}, at: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	f.s = New(Deps{Config: cfg, Jobs: &fakeJobs{store: st}, Store: st, Registry: f.reg, Log: zerolog.Nop()})
	return f
}

// tag returns branch's tag minutes after the fixture's start and puts it
// in the registry.
func (f *tagsFixture) tag(t *testing.T, branch string, minutes int) string {
	t.Helper()
	comp, err := tagpolicy.BranchComponent(branch)
	if err != nil {
		t.Fatal(err)
	}
	tag := tagpolicy.Timestamped(comp, f.at.Add(time.Duration(minutes)*time.Minute))
	f.reg["shop/api"] = append(f.reg["shop/api"], tag)
	return tag
}

// build records the build of branch that pushed tag, ending as status
// with services' outcomes.
func (f *tagsFixture) build(t *testing.T, branch, tag string, status job.Status, services ...updater.Result) int64 {
	t.Helper()
	ctx := context.Background()
	j := &job.Job{Project: "shop", Action: job.ActionBuild, Branch: branch, Status: job.Queued, Created: f.at}
	if err := f.st.Create(ctx, j, nil); err != nil {
		t.Fatal(err)
	}
	j.Status, j.Services = status, services
	j.Images = []job.Image{{Name: "shop/api", Tag: tag, LatestTag: "x-latest", Digest: "sha256:" + tag}}
	if err := f.st.Save(ctx, j); err != nil {
		t.Fatal(err)
	}
	return j.ID
}

func (f *tagsFixture) get(t *testing.T, service string) []RollbackTag {
	t.Helper()
	rec := apiGet(f.s, "/api/services/"+service+"/tags", "admin-token-0123456789")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET tags of %s: %d %s", service, rec.Code, rec.Body)
	}
	var got struct{ Tags []RollbackTag }
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	return got.Tags
}

// TestServiceTagsOfferOnlyTheServicesBranch: tags pushed by Main,
// main-<timestamp>, feature-x or feature/x are never rollback candidates
// of a service main deploys, and each candidate says how its build ended.
func TestServiceTagsOfferOnlyTheServicesBranch(t *testing.T) {
	f := newTagsFixture(t)
	ok1 := f.tag(t, "main", 1)
	ok1Job := f.build(t, "main", ok1, job.Succeeded, updater.Result{Service: "api", Outcome: updater.Updated})
	swarmBack := f.tag(t, "main", 2)
	swarmBackJob := f.build(t, "main", swarmBack, job.Failed, updater.Result{Service: "api", Outcome: updater.RolledBack})
	broken := f.tag(t, "main", 3)
	brokenJob := f.build(t, "main", broken, job.Failed, updater.Result{Service: "api", Outcome: updater.TimedOut})
	old := f.tag(t, "main", 0) // its job is gone from the history
	for _, b := range []string{"Main", "main-20261203101500", "main-latest", "feature-x", "feature/x", "MAIN"} {
		f.build(t, b, f.tag(t, b, 10), job.Succeeded)
	}
	f.reg["shop/api"] = append(f.reg["shop/api"], "main-latest", "v1.0", "latest")

	got := f.get(t, "api")
	want := []RollbackTag{
		{Tag: broken, Status: TagFailed, Branch: "main", Job: brokenJob},
		{Tag: swarmBack, Status: TagRolledBack, Branch: "main", Job: swarmBackJob},
		{Tag: ok1, Status: TagSucceeded, Branch: "main", Job: ok1Job},
		{Tag: old, Status: TagUnknown, Branch: "main"},
	}
	if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".At" }, cmp.Ignore())); diff != "" {
		t.Errorf("tags of api (-want +got):\n%s", diff)
	}

	// A rollback to a tag that does not exist names only main's.
	req := httptest.NewRequest(http.MethodPost, "/api/services/api/rollback", bytes.NewReader([]byte(`{"tag":"main-20200101000000"}`)))
	req.Header.Set("Authorization", "Bearer admin-token-0123456789")
	rec := httptest.NewRecorder()
	f.s.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), ok1) {
		t.Errorf("rollback to a missing tag: %d %s; want 404 naming %s", rec.Code, rec.Body, ok1)
	}
	for _, tag := range f.reg["shop/api"] {
		if c, _, ok := tagpolicy.ParseTimestamped(tag); ok && c != "main" && strings.Contains(rec.Body.String(), tag) {
			t.Errorf("404 offers %s, a tag of another branch: %s", tag, rec.Body)
		}
	}
}

// TestServiceTagsOfAGlobTarget: a target deploying release/* offers the
// tags of the release branches whose builds deployed it, hashed
// components and all, and not those of Release/1.0, which it does not
// deploy.
func TestServiceTagsOfAGlobTarget(t *testing.T) {
	f := newTagsFixture(t)
	r1 := f.tag(t, "release/1.0", 1)
	r1Job := f.build(t, "release/1.0", r1, job.Succeeded, updater.Result{Service: "rel", Outcome: updater.Updated})
	r1b := f.tag(t, "release/1.0", 2)
	r1bJob := f.build(t, "release/1.0", r1b, job.Failed, updater.Result{Service: "rel", Outcome: updater.RolledBack})
	f.build(t, "Release/1.0", f.tag(t, "Release/1.0", 3), job.Succeeded)
	f.build(t, "release-1.0", f.tag(t, "release-1.0", 4), job.Succeeded)
	f.build(t, "main", f.tag(t, "main", 5), job.Succeeded, updater.Result{Service: "api", Outcome: updater.Updated})

	got := f.get(t, "rel")
	want := []RollbackTag{
		{Tag: r1b, Status: TagRolledBack, Branch: "release/1.0", Job: r1bJob},
		{Tag: r1, Status: TagSucceeded, Branch: "release/1.0", Job: r1Job},
	}
	if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".At" }, cmp.Ignore())); diff != "" {
		t.Errorf("tags of rel (-want +got):\n%s", diff)
	}
}

// TestServiceTagsOfAnAlternativesTarget: a target whose pattern is a glob
// without '*' or '?' ({stable,LTS}) is still a glob: the tags of LTS, a
// hashed component no literal pattern names, are found through the
// builds that deployed the service.
func TestServiceTagsOfAnAlternativesTarget(t *testing.T) {
	f := newTagsFixture(t)
	lts := f.tag(t, "LTS", 1)
	ltsJob := f.build(t, "LTS", lts, job.Succeeded, updater.Result{Service: "lts", Outcome: updater.Updated})
	stable := f.tag(t, "stable", 2)
	stableJob := f.build(t, "stable", stable, job.Succeeded, updater.Result{Service: "lts", Outcome: updater.Updated})

	got := f.get(t, "lts")
	want := []RollbackTag{
		{Tag: stable, Status: TagSucceeded, Branch: "stable", Job: stableJob},
		{Tag: lts, Status: TagSucceeded, Branch: "LTS", Job: ltsJob},
	}
	if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".At" }, cmp.Ignore())); diff != "" {
		t.Errorf("tags of lts (-want +got):\n%s", diff)
	}
}

// TestServiceTagsOfAPromotionTarget: a service that takes promotions
// from staging offers the tags of the branch deploying to staging, the
// very manifests a promotion put there; a rollback to one deploys its
// digest.
func TestServiceTagsOfAPromotionTarget(t *testing.T) {
	f := newTagsFixture(t)
	m1 := f.tag(t, "main", 1)
	m1Job := f.build(t, "main", m1, job.Succeeded, updater.Result{Service: "api", Outcome: updater.Updated})
	f.build(t, "release/1.0", f.tag(t, "release/1.0", 2), job.Succeeded, updater.Result{Service: "rel", Outcome: updater.Updated})

	got := f.get(t, "prod_api")
	want := []RollbackTag{{Tag: m1, Status: TagSucceeded, Branch: "main", Job: m1Job}}
	if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".At" }, cmp.Ignore())); diff != "" {
		t.Errorf("tags of prod_api (-want +got):\n%s", diff)
	}
}

// TestRollbackOfAnApprovedTargetGoesOnlyToWhatRanThere: rollbacks are
// never held for an approval, so on a target that needs one a rollback
// goes only to a tag its service ran before (a succeeded job deployed
// it there), and only those are offered: a staging build never approved
// for vault cannot reach it as a "rollback" (403); once promoted it can.
func TestRollbackOfAnApprovedTargetGoesOnlyToWhatRanThere(t *testing.T) {
	f := newTagsFixture(t)
	m1 := f.tag(t, "main", 1)
	f.build(t, "main", m1, job.Succeeded, updater.Result{Service: "api", Outcome: updater.Updated})
	rollback := func(service, tag string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/api/services/"+service+"/rollback", strings.NewReader(`{"tag":"`+tag+`"}`))
		req.Header.Set("Authorization", "Bearer admin-token-0123456789")
		rec := httptest.NewRecorder()
		f.s.ServeHTTP(rec, req)
		return rec
	}
	if rec := rollback("vault_api", m1); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "never ran") {
		t.Errorf("rollback of vault_api to a build it never ran: %d %s, want 403", rec.Code, rec.Body)
	}
	if got := f.get(t, "vault_api"); len(got) != 0 {
		t.Errorf("vault_api offers %v, builds it never ran", got)
	}
	for _, svc := range []string{"api", "prod_api"} { // no approval there
		if rec := rollback(svc, m1); rec.Code != http.StatusAccepted {
			t.Errorf("rollback of %s, whose target needs no approval: %d %s, want 202", svc, rec.Code, rec.Body)
		}
	}

	ctx := context.Background()
	j := &job.Job{Project: "shop", Action: job.ActionPromote, Environment: "vault", From: "staging", Status: job.Queued, Created: f.at}
	if err := f.st.Create(ctx, j, nil); err != nil {
		t.Fatal(err)
	}
	j.Status = job.Succeeded
	j.Images = []job.Image{{Name: "shop/api", Tag: m1, Digest: "sha256:" + m1}}
	j.Services = []updater.Result{{Service: "vault_api", Outcome: updater.Updated}}
	if err := f.st.Save(ctx, j); err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, "vault_api"); len(got) != 1 || got[0].Tag != m1 {
		t.Errorf("vault_api offers %v, want the promoted %s", got, m1)
	}
	if rec := rollback("vault_api", m1); rec.Code != http.StatusAccepted {
		t.Errorf("rollback of vault_api to a build promoted there: %d %s, want 202", rec.Code, rec.Body)
	}
}
