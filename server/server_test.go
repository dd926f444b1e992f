package server

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
)

// TestAPITokenHeader: only "Authorization: Bearer <token>" with a known
// token passes; anything else is 401 with the same body, and a known
// token without the scope is 403 naming what it lacks.
func TestAPITokenHeader(t *testing.T) {
	s, _, _, _ := newTestServer(t)
	for _, tt := range []struct {
		name, method, path, header string
		want                       int
		wantBody                   string
	}{
		{name: "no header", method: http.MethodGet, path: "/api/jobs", want: 401, wantBody: "missing or unknown bearer token"},
		{name: "empty token", method: http.MethodGet, path: "/api/jobs", header: "Bearer ", want: 401, wantBody: "missing or unknown bearer token"},
		{name: "no scheme", method: http.MethodGet, path: "/api/jobs", header: "reader-token-0123456789", want: 401, wantBody: "missing or unknown bearer token"},
		{name: "basic scheme", method: http.MethodGet, path: "/api/jobs", header: "Basic reader-token-0123456789", want: 401, wantBody: "missing or unknown bearer token"},
		{name: "unknown token", method: http.MethodGet, path: "/api/jobs", header: "Bearer reader-token-012345678", want: 401, wantBody: "missing or unknown bearer token"},
		{name: "known token", method: http.MethodGet, path: "/api/jobs", header: "Bearer reader-token-0123456789", want: 200, wantBody: `"jobs"`},
		// RFC 9110 11.1: the scheme is case-insensitive.
		{name: "scheme in lower case", method: http.MethodGet, path: "/api/jobs", header: "bearer reader-token-0123456789", want: 200, wantBody: `"jobs"`},
		{name: "missing scope", method: http.MethodPost, path: "/api/services/shop_api/scale", header: "Bearer reader-token-0123456789", want: 403, wantBody: `reader needs \"scale\"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(`{"replicas":2}`))
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("got %d %s, want %d containing %s", rec.Code, rec.Body, tt.want, tt.wantBody)
			}
			if strings.Contains(rec.Body.String(), "token-0123456789") {
				t.Errorf("the answer repeats the token: %s", rec.Body)
			}
		})
	}
}

// TestPanickingHandlerAnswers500: a handler that panics is answered 500
// without the panic's text, logged with its stack, and the server goes on
// answering.
func TestPanickingHandlerAnswers500(t *testing.T) {
	s, log := loggingServer(t)
	s.echo.GET("/boom", func(echo.Context) error { panic("secret-ish panic value") })

	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/boom", nil))
	if rec.Code != http.StatusInternalServerError || strings.TrimSpace(rec.Body.String()) != `{"error":"internal error"}` {
		t.Errorf("got %d %s, want 500 internal error", rec.Code, rec.Body)
	}
	if !strings.Contains(log.String(), `"message":"handler panicked"`) || !strings.Contains(log.String(), "goroutine") {
		t.Errorf("the panic and its stack are not logged:\n%s", log)
	}
	if got := accessLines(t, log.String()); !cmp.Equal(got, []string{"info GET /boom 500"}) {
		t.Errorf("access log = %q", got)
	}
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("after a panic /healthz answers %d", rec.Code)
	}
}

// TestAccessLog: one line per request with method, path, status and time
// taken; successful reads at debug, the rest at info; never a token, a
// header or the query string.
func TestAccessLog(t *testing.T) {
	s, log := loggingServer(t)
	for _, r := range []struct{ method, target, token string }{
		{http.MethodGet, "/api/jobs?token=query-secret-0123", "reader-token-0123456789"},
		{http.MethodGet, "/api/jobs/99", "reader-token-0123456789"},
		{http.MethodGet, "/api/jobs", "wrong-token-0123456789"},
		{http.MethodPost, "/api/services/shop_api/scale", "reader-token-0123456789"},
		{http.MethodGet, "/nowhere", ""},
	} {
		req := httptest.NewRequest(r.method, r.target, nil)
		if r.token != "" {
			req.Header.Set("Authorization", "Bearer "+r.token)
		}
		s.ServeHTTP(httptest.NewRecorder(), req)
	}
	want := []string{
		"debug GET /api/jobs 200",
		"info GET /api/jobs/99 404",
		"info GET /api/jobs 401",
		"info POST /api/services/shop_api/scale 403",
		"info GET /nowhere 404",
	}
	if diff := cmp.Diff(want, accessLines(t, log.String())); diff != "" {
		t.Errorf("access log (-want +got):\n%s", diff)
	}
	for _, secret := range []string{"token-0123456789", "query-secret", "Bearer", "Authorization"} {
		if strings.Contains(log.String(), secret) {
			t.Errorf("the log holds %q:\n%s", secret, log)
		}
	}
}

// loggingServer is newTestServer logging everything into a buffer.
func loggingServer(t *testing.T) (*Server, *syncBuffer) {
	t.Helper()
	s, _, _, _ := newTestServer(t)
	log := &syncBuffer{}
	s2 := New(Deps{Config: s.d.Config, Jobs: s.d.Jobs, Store: s.d.Store, Logs: s.d.Logs, Log: zerolog.New(log)})
	return s2, log
}

// accessLines reads the access log lines out of a JSON log as
// "level method path status", checking each has a duration.
func accessLines(t *testing.T, log string) []string {
	t.Helper()
	var got []string
	for lines := bufio.NewScanner(strings.NewReader(log)); lines.Scan(); {
		var l struct {
			Level, Message, Method, Path string
			Status                       int
			Took                         *float64
		}
		if err := json.Unmarshal(lines.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", lines.Text(), err)
		}
		if l.Message != "request" {
			continue
		}
		if l.Took == nil {
			t.Errorf("no took in %s", lines.Text())
		}
		got = append(got, strings.Join([]string{l.Level, l.Method, l.Path, strconv.Itoa(l.Status)}, " "))
	}
	return got
}
