package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/swarmhook/swarmhook/config"
)

// fakeSessions knows one cookie value, standing for a token with
// scopes, and wants csrf on unsafe methods.
type fakeSessions struct {
	scopes []config.Scope
}

var errFakeCSRF = errors.New("csrf")

func (f fakeSessions) Authenticate(r *http.Request) (config.Token, bool, error) {
	c, err := r.Cookie("s")
	if err != nil || c.Value != "good" {
		return config.Token{}, false, nil
	}
	if r.Method != http.MethodGet && r.Header.Get("X-CSRF-Token") != "csrf" {
		return config.Token{}, false, errFakeCSRF
	}
	return config.Token{Name: "browser", Scopes: f.scopes}, true, nil
}

func TestSessionCookieAuthenticatesTheAPI(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, cookie, csrf, bearer string
		scopes                                   []config.Scope
		want                                     int
	}{
		{"read with a session", http.MethodGet, "/api/jobs", "good", "", "", []config.Scope{config.ScopeRead}, 200},
		{"unknown cookie", http.MethodGet, "/api/jobs", "bad", "", "", []config.Scope{config.ScopeRead}, 401},
		{"action without csrf", http.MethodPost, "/api/services/x/redeploy", "good", "", "", []config.Scope{config.ScopeAdmin}, 403},
		{"action beyond the scopes", http.MethodPost, "/api/services/x/redeploy", "good", "csrf", "", []config.Scope{config.ScopeRead}, 403},
		// x is no managed service: the request got past authentication.
		{"action with csrf", http.MethodPost, "/api/services/x/redeploy", "good", "csrf", "", []config.Scope{config.ScopeAdmin}, 404},
		{"bearer wins over a cookie", http.MethodGet, "/api/jobs", "good", "", "wrong-token", []config.Scope{config.ScopeRead}, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _, _ := newTestServer(t)
			s = New(Deps{Config: s.d.Config, Jobs: s.d.Jobs, Store: s.d.Store, Logs: s.d.Logs, Log: s.d.Log, Sessions: fakeSessions{tc.scopes}})
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(""))
			req.AddCookie(&http.Cookie{Name: "s", Value: tc.cookie})
			if tc.csrf != "" {
				req.Header.Set("X-CSRF-Token", tc.csrf)
			}
			if tc.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tc.bearer)
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != tc.want {
				t.Errorf("%d %s, want %d", w.Code, w.Body, tc.want)
			}
		})
	}
}

func TestDashboardServesWhatTheAPIDoesNot(t *testing.T) {
	s, _, _, _ := newTestServer(t)
	dash := fakeDashboard{func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("dashboard " + r.URL.Path)) }}
	s = New(Deps{Config: s.d.Config, Jobs: s.d.Jobs, Store: s.d.Store, Logs: s.d.Logs, Log: s.d.Log, Dashboard: dash})
	for _, tc := range []struct {
		method, path string
		code         int
		want         string
	}{
		{"GET", "/", 200, "dashboard /"},
		{"GET", "/jobs/3", 200, "dashboard /jobs/3"},
		{"GET", "/healthz", 200, `"ok"`},
		{"GET", "/api/nope", 404, `{"error":"Not Found"}`},
		{"GET", "/hooks/shop", 405, `{"error":"Method Not Allowed"}`},
		{"DELETE", "/api/jobs/1", 405, `{"error":"Method Not Allowed"}`},
	} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, w.Code, w.Body, tc.code, tc.want)
		}
	}
}

type fakeDashboard struct{ http.HandlerFunc }

func (fakeDashboard) Paths() []string { return []string{"/", "/jobs/*"} }
