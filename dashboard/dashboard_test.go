package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
	"github.com/swarmhook/swarmhook/updater"
)

// Secrets of the test config; no page may show any of them.
const (
	adminToken = "admin-token-secret-0123456789"
	readToken  = "read-token-secret-0123456789"
	regPass    = "registry-password-secret"
	hookSecret = "webhook-secret-0123456789abcdef"
	gitToken   = "git-token-secret-0123456789"
	urlPass    = "url-password-secret"
)

var secrets = []string{adminToken, readToken, regPass, hookSecret, gitToken, urlPass}

type fakeJobs struct{ jobs []*job.Job }

func (f *fakeJobs) Get(_ context.Context, id int64) (*job.Job, error) {
	for _, j := range f.jobs {
		if j.ID == id {
			return j, nil
		}
	}
	return nil, store.ErrNotFound
}

func (f *fakeJobs) List(_ context.Context, fl store.Filter) ([]*job.Job, error) {
	var out []*job.Job
	for i := len(f.jobs) - 1; i >= 0 && len(out) < max(fl.Limit, 1); i-- {
		j := f.jobs[i]
		if (fl.Project == "" || j.Project == fl.Project) && (fl.Branch == "" || j.Branch == fl.Branch) &&
			(fl.Status == "" || j.Status == fl.Status) && (fl.Before == 0 || j.ID < fl.Before) {
			out = append(out, j)
		}
	}
	return out, nil
}

type fakeLogs map[int64][]byte

type seekCloser struct{ *bytes.Reader }

func (seekCloser) Close() error { return nil }

func (f fakeLogs) Open(id int64) (io.ReadCloser, error) {
	return seekCloser{bytes.NewReader(f[id])}, nil
}

type fixture struct {
	h    *Handler
	jobs *fakeJobs
	logs fakeLogs
	now  time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg, err := config.Load(strings.NewReader(fmt.Sprintf(`
registry: {host: "r:5000", username: u, password: %s}
tokens:
  - {name: boss, token: %s, scopes: [admin]}
  - {name: reader, token: %s, scopes: [read]}
  - {name: bot, token: deploy-only-token-0123456789, scopes: [deploy]}
projects:
  - name: shop
    repo: https://bot:%s@git.example.com/team/shop.git
    secret: %s
    git: {token: %s}
    images: [{name: shop/api}]
    deploy: [{branch: main, services: [shop-api, shop-web]}]
`, regPass, adminToken, readToken, urlPass, hookSecret, gitToken)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f := &fixture{jobs: &fakeJobs{}, logs: fakeLogs{}, now: now}
	for i := int64(1); i <= 3; i++ {
		f.jobs.jobs = append(f.jobs.jobs, &job.Job{ID: i, Project: "shop", Number: i, Action: job.ActionBuild, Status: job.Succeeded,
			Branch: "main", Commit: fmt.Sprintf("%040d", i), Who: "tess", Created: now, Started: now, Finished: now.Add(5 * time.Second),
			Stages:   []job.Stage{{Name: "build", Started: now, Finished: now.Add(3 * time.Second)}},
			Images:   []job.Image{{Name: "shop/api", Tag: "main-20260501120000", Digest: "sha256:abc"}},
			Services: []updater.Result{{Service: "shop-api", Outcome: updater.Updated, Started: now.Add(3 * time.Second), Finished: now.Add(5 * time.Second)}}})
		f.logs[i] = []byte("fetch\nbuild\ndeploy\n")
	}
	f.h, err = New(Deps{Config: cfg, Jobs: f.jobs, Logs: f.logs, Sessions: NewSessions(time.Hour, func() time.Time { return f.now }),
		Log: zerolog.Nop(), Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// signIn returns the session cookie for token.
func (f *fixture) signIn(t *testing.T, token string) *http.Cookie {
	t.Helper()
	form := url.Values{"token": {token}, "next": {"/jobs"}}
	req := httptest.NewRequest(http.MethodPost, "/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/jobs" {
		t.Fatalf("sign in: %d %s", w.Code, w.Body)
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("sign in set %d cookies", len(cs))
	}
	return cs[0]
}

func (f *fixture) get(t *testing.T, path string, c *http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if c != nil {
		req.AddCookie(c)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	return w
}

func TestSignInGivesAStrictHTTPOnlyCookieThatExpires(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, adminToken)
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.MaxAge != 3600 || c.Path != "/" {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Max-Age=3600, Path=/", c)
	}
	if c.Value == adminToken || strings.Contains(c.Value, adminToken) {
		t.Error("the cookie carries the token")
	}
	if w := f.get(t, "/jobs", c); w.Code != http.StatusOK {
		t.Errorf("signed in: jobs page %d", w.Code)
	}
	f.now = f.now.Add(time.Hour)
	if w := f.get(t, "/jobs", c); w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/signin") {
		t.Errorf("after expiry: %d %s, want a redirect to /signin", w.Code, w.Header().Get("Location"))
	}
}

func TestSignInRefusesUnknownTokens(t *testing.T) {
	f := newFixture(t)
	form := url.Values{"token": {"nope-0123456789"}}
	req := httptest.NewRequest(http.MethodPost, "/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized || len(w.Result().Cookies()) != 0 {
		t.Errorf("unknown token: %d, cookies %v", w.Code, w.Result().Cookies())
	}
	if w := f.get(t, "/services", nil); w.Code != http.StatusSeeOther {
		t.Errorf("no session: %d, want a redirect", w.Code)
	}
}

func TestSignInWantsTheReadScope(t *testing.T) {
	f := newFixture(t)
	req := httptest.NewRequest(http.MethodPost, "/signin", strings.NewReader("token=deploy-only-token-0123456789"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 || !strings.Contains(w.Body.String(), "read scope") {
		t.Errorf("deploy-only token: %d, cookies %v", w.Code, w.Result().Cookies())
	}
}

func TestSignInIsRefusedCrossOrigin(t *testing.T) {
	f := newFixture(t)
	req := httptest.NewRequest(http.MethodPost, "/signin", strings.NewReader("token="+adminToken))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
		t.Errorf("cross-site sign-in: %d, cookies %v", w.Code, w.Result().Cookies())
	}
}

func TestSignOutEndsTheSession(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, adminToken)
	se, _ := f.h.d.Sessions.lookup(withCookie(c))
	for _, tc := range []struct {
		name, csrf string
		want       int
	}{{"forged", "wrong", http.StatusForbidden}, {"own", se.csrf, http.StatusSeeOther}} {
		req := httptest.NewRequest(http.MethodPost, "/signout", strings.NewReader("csrf="+tc.csrf))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(c)
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, req)
		if w.Code != tc.want {
			t.Errorf("%s sign-out: %d, want %d", tc.name, w.Code, tc.want)
		}
	}
	if w := f.get(t, "/jobs", c); w.Code != http.StatusSeeOther {
		t.Errorf("after sign-out the old cookie still works: %d", w.Code)
	}
}

func withCookie(c *http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(c)
	return r
}

func TestAuthenticateWantsTheCSRFTokenOnUnsafeMethods(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, adminToken)
	se, _ := f.h.d.Sessions.lookup(withCookie(c))
	other := "x" + se.csrf[1:]
	if other == se.csrf {
		other = "y" + se.csrf[1:]
	}
	for _, tc := range []struct {
		name, method, csrf string
		ok                 bool
		err                error
	}{
		{"read", http.MethodGet, "", true, nil},
		{"action without token", http.MethodPost, "", false, ErrCSRF},
		{"action with another token", http.MethodPost, other, false, ErrCSRF},
		{"action with the session's token", http.MethodPost, se.csrf, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/api/prune", nil)
			r.AddCookie(c)
			if tc.csrf != "" {
				r.Header.Set(CSRFHeader, tc.csrf)
			}
			tok, ok, err := f.h.d.Sessions.Authenticate(r)
			if ok != tc.ok || err != tc.err {
				t.Fatalf("ok %v err %v, want %v %v", ok, err, tc.ok, tc.err)
			}
			if ok && (tok.Name != "boss" || !slices.Contains(tok.Scopes, config.ScopeAdmin) || tok.Token != "") {
				t.Errorf("token %+v, want boss with admin and no secret", tok)
			}
		})
	}
}

// pages are every page a signed-in user can open.
var pages = []string{"/", "/jobs", "/jobs?project=shop&status=succeeded", "/jobs?rows=1", "/jobs/3", "/jobs/3/log?from=0", "/services", "/prune", "/signin", "/badge/shop/main.svg"}

func TestNoPageShowsASecret(t *testing.T) {
	f := newFixture(t)
	for _, token := range []string{adminToken, readToken} {
		c := f.signIn(t, token)
		for _, p := range pages {
			w := f.get(t, p, c)
			if w.Code >= 500 {
				t.Errorf("%s: %d", p, w.Code)
			}
			for _, s := range secrets {
				if strings.Contains(w.Body.String(), s) || strings.Contains(fmt.Sprint(w.Header()), s) {
					t.Errorf("%s shows a secret (%.6s…)", p, s)
				}
			}
		}
	}
}

func TestCommitLinksCarryNoCredentials(t *testing.T) {
	for _, tc := range []struct{ repo, want string }{
		{"https://bot:pw@github.com/team/app.git", "https://github.com/team/app/commit/abc"},
		{"git@github.com:team/app.git", "https://github.com/team/app/commit/abc"},
		{"file:///srv/app", ""},
	} {
		if got := commitURL(&config.Project{Repo: tc.repo}, "abc"); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.repo, got, tc.want)
		}
	}
}

func TestReadTokenSeesNoActionButton(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		token string
		want  bool
	}{{readToken, false}, {adminToken, true}} {
		c := f.signIn(t, tc.token)
		for _, p := range []string{"/", "/services", "/prune"} {
			body := f.get(t, p, c).Body.String()
			if got := strings.Contains(body, `class="act`) && strings.Contains(body, "data-post"); got != tc.want {
				t.Errorf("%s with %.4s… token: action buttons %v, want %v", p, tc.token, got, tc.want)
			}
		}
	}
}

func TestJobPageOpensALongLogAtItsEnd(t *testing.T) {
	f := newFixture(t)
	var log bytes.Buffer
	for i := 0; log.Len() < 10<<20; i++ {
		fmt.Fprintf(&log, "line %07d of the build output\n", i)
	}
	f.logs[3] = log.Bytes()
	c := f.signIn(t, adminToken)
	w := f.get(t, "/jobs/3", c)
	body := w.Body.String()
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if !strings.Contains(body, lines[len(lines)-1]) || strings.Contains(body, lines[0]) {
		t.Errorf("job page does not show the log's end only")
	}
	if w.Body.Len() > 100<<10 {
		t.Errorf("job page is %d bytes, want the tail only (< 100 KB)", w.Body.Len())
	}
	// Scrolling back: the part just before the tail, in whole lines.
	start := strings.LastIndex(log.String()[:log.Len()-64<<10], "\n") + 1
	w = f.get(t, fmt.Sprintf("/jobs/3/log?before=%d", start), c)
	got := w.Body.String()
	if !strings.HasPrefix(got, "line ") || !strings.HasSuffix(got, "\n") || !strings.HasSuffix(log.String()[:start], got) {
		t.Errorf("earlier part is not the whole lines before %d: %.40q…%.40q", start, got, got[max(0, len(got)-40):])
	}
	if w.Header().Get("X-Log-End") != fmt.Sprint(start) {
		t.Errorf("X-Log-End %s, want %d", w.Header().Get("X-Log-End"), start)
	}
}

func TestBadge(t *testing.T) {
	f := newFixture(t)
	f.jobs.jobs[2].Status = job.Failed
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/badge/shop/main.svg", 200, "failed"},
		{"/badge/shop/other.svg", 200, "none"},
		{"/badge/nope/main.svg", 404, "unknown"},
		{"/badge/shop/main", 404, "unknown"},
	} {
		w := f.get(t, tc.path, nil)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), ">"+tc.want+"<") || w.Header().Get("Content-Type") != "image/svg+xml" {
			t.Errorf("%s: %d %s, want %d %s", tc.path, w.Code, w.Body, tc.code, tc.want)
		}
	}
}

func TestPrivateBadgesWantASession(t *testing.T) {
	f := newFixture(t)
	f.h.d.Config.Dashboard.PrivateBadges = true
	if w := f.get(t, "/badge/shop/main.svg", nil); w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), "succeeded") {
		t.Errorf("signed out: %d %s, want 401 and no status", w.Code, w.Body)
	}
	if w := f.get(t, "/badge/shop/main.svg", f.signIn(t, readToken)); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), ">succeeded<") {
		t.Errorf("signed in: %d %s", w.Code, w.Body)
	}
}

func TestJobSummaryAloneForTheLivePage(t *testing.T) {
	f := newFixture(t)
	c := f.signIn(t, adminToken)
	body := f.get(t, "/jobs/3?part=summary", c).Body.String()
	if !strings.HasPrefix(strings.TrimSpace(body), `<div id="summary" data-status="succeeded">`) || strings.Contains(body, "<pre") || strings.Contains(body, "<html") {
		t.Errorf("summary part: %.300s", body)
	}
	if !strings.Contains(body, `class="timeline"`) {
		t.Error("summary part has no timeline")
	}
}

func TestPathsCoverEveryPage(t *testing.T) {
	f := newFixture(t)
	covered := func(p string) bool {
		for _, q := range f.h.Paths() {
			if pre, ok := strings.CutSuffix(q, "*"); ok && strings.HasPrefix(p, pre) || p == q {
				return true
			}
		}
		return false
	}
	for _, p := range append(pages, "/signout", "/static/app.js", "/static/app.css", "/jobs/3?part=summary") {
		if u, _ := url.Parse(p); !covered(u.Path) {
			t.Errorf("%s is served but not in Paths, so the server would not route it", u.Path)
		}
	}
}

func TestSignInNeverRedirectsOffTheSite(t *testing.T) {
	for _, tc := range []struct{ next, want string }{
		{"/jobs?project=shop", "/jobs?project=shop"},
		{"//evil.example/", "/"},
		{"/\\evil.example/", "/"},
		{"https://evil.example/", "/"},
		// Browsers drop tabs and newlines from a URL, and read \ as /:
		// each of these would become //evil.example.
		{"/\t/evil.example/", "/"},
		{"/\n/evil.example/", "/"},
		{"/\t\\evil.example/", "/"},
		{"/%09/evil.example/", "/%09/evil.example/"},
	} {
		form := url.Values{"token": {adminToken}, "next": {tc.next}}
		req := httptest.NewRequest(http.MethodPost, "/signin", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		newFixture(t).h.ServeHTTP(w, req)
		if got := w.Header().Get("Location"); got != tc.want {
			t.Errorf("next %q: Location %q, want %q", tc.next, got, tc.want)
		}
	}
}

func TestSessionsOfOneTokenAreBounded(t *testing.T) {
	f := newFixture(t)
	reader := f.signIn(t, readToken)
	first := f.signIn(t, adminToken)
	var last *http.Cookie
	for range MaxSessionsPerToken + 10 {
		f.now = f.now.Add(time.Second)
		last = f.signIn(t, adminToken)
	}
	if n := len(f.h.d.Sessions.byID); n > MaxSessionsPerToken+1 {
		t.Errorf("%d sessions held, want at most %d of one token and the reader's", n, MaxSessionsPerToken)
	}
	if w := f.get(t, "/jobs", first); w.Code != http.StatusSeeOther {
		t.Errorf("the token's oldest sign-in still works: %d", w.Code)
	}
	for name, c := range map[string]*http.Cookie{"newest": last, "another token's": reader} {
		if w := f.get(t, "/jobs", c); w.Code != http.StatusOK {
			t.Errorf("the %s session was dropped: %d", name, w.Code)
		}
	}
}

// fakeStacks runs the services of each stack it holds.
type fakeStacks map[string][]string

func (f fakeStacks) Services(_ context.Context, stack string) ([]string, error) { return f[stack], nil }

// TestServicesPageListsAStacksServices: a stack target's services are
// listed by their Swarm names as they run, never by the keys of the
// target's order, and a service labelled as the stack's but not named
// <stack>_<key> is not the stack's to act on.
func TestServicesPageListsAStacksServices(t *testing.T) {
	cfg, err := config.Load(strings.NewReader(fmt.Sprintf(`
registry: {host: "r:5000"}
tokens: [{name: boss, token: %s, scopes: [admin]}]
projects:
  - name: shop
    repo: https://git.example.com/team/shop.git
    secret: %s
    images: [{name: shop/api}]
    deploy:
      - {branch: main, services: [shop-web]}
      - {branch: next, stack: {name: vipay, file: compose.yml}, services: [api]}
`, adminToken, hookSecret)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Deps{Config: cfg, Jobs: &fakeJobs{}, Logs: fakeLogs{}, Sessions: NewSessions(time.Hour, nil),
		Stacks: fakeStacks{"vipay": {"stranger", "vipay_api", "vipay_worker"}}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{h: h}
	c := f.signIn(t, adminToken)

	body := f.get(t, "/services", c).Body.String()
	for _, want := range []string{"shop-web", "vipay_api", "vipay_worker"} {
		if !strings.Contains(body, `data-service="`+want+`"`) {
			t.Errorf("services page lacks %s", want)
		}
	}
	for _, not := range []string{"api", "stranger"} {
		if strings.Contains(body, `data-service="`+not+`"`) {
			t.Errorf("services page lists %s, which is no managed Swarm service", not)
		}
	}
	if jobs := f.get(t, "/jobs", c).Body.String(); !strings.Contains(jobs, "<option >vipay_worker</option>") {
		t.Errorf("the jobs page's service filter lacks vipay_worker")
	}
}
