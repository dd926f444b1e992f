package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmhook/swarmhook/client"
)

// call is one request the fake server saw.
type call struct {
	Method, Path, Query, Body, Auth string
}

// fakeAPI records every request and answers from answers, keyed by
// "METHOD /path"; requests it has no answer for get 404 as an unknown
// route of the real server would.
type fakeAPI struct {
	mu      sync.Mutex
	calls   []call
	answers map[string]func() (int, string)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, call{r.Method, r.URL.Path, r.URL.RawQuery, string(b), r.Header.Get("Authorization")})
	ans, ok := f.answers[r.Method+" "+r.URL.Path]
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"Not Found"}`)
		return
	}
	code, body := ans()
	w.WriteHeader(code)
	io.WriteString(w, body)
}

const token = "cli-test-token-0123456789"

func run(t *testing.T, api *fakeAPI, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	var out, errOut bytes.Buffer
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return map[string]string{EnvURL: srv.URL, EnvToken: token}[k]
	}
	code := Run(context.Background(), args, IO{Stdout: &out, Stderr: &errOut, Getenv: getenv, Options: []client.Option{client.WithPoll(time.Millisecond)}})
	return code, out.String(), errOut.String()
}

func answer(code int, body string) func() (int, string) {
	return func() (int, string) { return code, body }
}

// TestEachCommandCallsItsEndpoint: every command sends the documented
// request with the bearer token, including promote, approve, reject
// and freeze, whose endpoints come with environments and approvals.
func TestEachCommandCallsItsEndpoint(t *testing.T) {
	started := answer(http.StatusAccepted, `{"job":7}`)
	ok := answer(http.StatusOK, `{}`)
	for _, tt := range []struct {
		name string
		args []string
		want call
	}{
		{"jobs", []string{"jobs", "-project", "shop", "-limit", "5"}, call{"GET", "/api/jobs", "limit=5&project=shop", "", ""}},
		{"job", []string{"job", "42"}, call{"GET", "/api/jobs/42", "", "", ""}},
		{"log", []string{"log", "42"}, call{"GET", "/api/jobs/42/log", "", "", ""}},
		{"log -f after the argument", []string{"log", "42", "-f"}, call{"GET", "/api/jobs/42/log", "follow=1", "", ""}},
		{"services", []string{"services"}, call{"GET", "/api/services", "", "", ""}},
		{"tags", []string{"tags", "shop_api"}, call{"GET", "/api/services/shop_api/tags", "", "", ""}},
		{"rollback to a tag", []string{"rollback", "shop_api", "--to", "main-20261126101500"}, call{"POST", "/api/services/shop_api/rollback", "", `{"tag":"main-20261126101500"}`, ""}},
		{"native rollback", []string{"rollback", "shop_api"}, call{"POST", "/api/services/shop_api/rollback", "", "", ""}},
		{"deploy a branch", []string{"deploy", "shop", "--branch", "main"}, call{"POST", "/api/projects/shop/deploy", "", `{"branch":"main"}`, ""}},
		{"deploy a tag", []string{"deploy", "shop", "--branch", "main", "--tag", "main-20261126101500"}, call{"POST", "/api/projects/shop/deploy", "", `{"branch":"main","tag":"main-20261126101500"}`, ""}},
		{"redeploy", []string{"redeploy", "shop_web"}, call{"POST", "/api/services/shop_web/redeploy", "", "", ""}},
		{"scale", []string{"scale", "shop_worker", "5"}, call{"POST", "/api/services/shop_worker/scale", "", `{"replicas":5}`, ""}},
		{"promote", []string{"promote", "shop", "staging", "production"}, call{"POST", "/api/projects/shop/promote", "", `{"from":"staging","to":"production"}`, ""}},
		{"approve", []string{"approve", "42"}, call{"POST", "/api/jobs/42/approve", "", "", ""}},
		{"reject", []string{"reject", "42"}, call{"POST", "/api/jobs/42/reject", "", "", ""}},
		{"freeze", []string{"freeze", "production", "-until", "2026-12-27T08:00:00Z", "-reason", "holidays"}, call{"POST", "/api/freeze", "", `{"target":"production","until":"2026-12-27T08:00:00Z","reason":"holidays"}`, ""}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{answers: map[string]func() (int, string){
				"GET /api/jobs":                        answer(200, `{"jobs":[]}`),
				"GET /api/jobs/42":                     answer(200, `{"id":42,"status":"running"}`),
				"GET /api/jobs/42/log":                 answer(200, "line\n"),
				"GET /api/services":                    answer(200, `{"services":[]}`),
				"GET /api/services/shop_api/tags":      answer(200, `{"tags":[]}`),
				"POST /api/services/shop_api/rollback": started,
				"POST /api/projects/shop/deploy":       started,
				"POST /api/services/shop_web/redeploy": started,
				"POST /api/services/shop_worker/scale": started,
				"POST /api/projects/shop/promote":      started,
				"POST /api/jobs/42/approve":            ok,
				"POST /api/jobs/42/reject":             ok,
				"POST /api/freeze":                     answer(200, `{"target":"production"}`),
			}}
			code, out, errOut := run(t, api, nil, tt.args...)
			if code != ExitOK {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			tt.want.Auth = "Bearer " + token
			if diff := cmp.Diff([]call{tt.want}, api.calls); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWaitExitsWithTheJobsOutcome: -wait polls the job until it ends
// and the exit code says how it ended.
func TestWaitExitsWithTheJobsOutcome(t *testing.T) {
	for _, tt := range []struct {
		final string
		want  int
	}{
		{"succeeded", ExitOK},
		{"failed", ExitJobFailed},
		{"interrupted", ExitJobFailed},
	} {
		t.Run(tt.final, func(t *testing.T) {
			polls := 0
			api := &fakeAPI{answers: map[string]func() (int, string){
				"POST /api/services/shop_api/rollback": answer(http.StatusAccepted, `{"job":9}`),
				"GET /api/jobs/9": func() (int, string) {
					polls++
					if polls < 3 {
						return 200, `{"id":9,"status":"running"}`
					}
					return 200, `{"id":9,"status":"` + tt.final + `","services":[{"service":"shop_api","outcome":"updated"}]}`
				},
			}}
			code, out, errOut := run(t, api, nil, "rollback", "shop_api", "-wait")
			if code != tt.want {
				t.Errorf("exit %d, want %d; stdout %q stderr %q", code, tt.want, out, errOut)
			}
			if !strings.Contains(out, tt.final) || !strings.Contains(out, "shop_api") {
				t.Errorf("output does not show the ended job:\n%s", out)
			}
			if polls != 3 {
				t.Errorf("job read %d times, want until it ended (3)", polls)
			}
		})
	}
}

// TestRefusalsAreErrors: the server's error text reaches stderr and the
// exit code is 1; endpoints not on the server yet (404) say so.
func TestRefusalsAreErrors(t *testing.T) {
	api := &fakeAPI{answers: map[string]func() (int, string){
		"POST /api/services/shop_api/rollback": answer(http.StatusNotFound, `{"error":"no such tag: shop/api has no tag \"x\"; nearest: main-1"}`),
	}}
	code, _, errOut := run(t, api, nil, "rollback", "shop_api", "-to", "x")
	if code != ExitError || !strings.Contains(errOut, `nearest: main-1`) || !strings.Contains(errOut, "404") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = run(t, &fakeAPI{}, nil, "promote", "shop", "staging", "production")
	if code != ExitError || !strings.Contains(errOut, "404") {
		t.Errorf("promote on a server without it: exit %d, stderr %q", code, errOut)
	}
}

// TestTokenNeverFromAFlag: the token comes from the environment or a
// file; there is no flag that would put it in the process list.
func TestTokenNeverFromAFlag(t *testing.T) {
	api := &fakeAPI{answers: map[string]func() (int, string){"GET /api/services": answer(200, `{"services":[]}`)}}
	if code, _, errOut := run(t, api, map[string]string{EnvToken: ""}, "services"); code != ExitUsage || !strings.Contains(errOut, EnvToken) {
		t.Errorf("no token: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := run(t, api, nil, "services", "-token", "x"); code != ExitUsage {
		t.Errorf("-token accepted: exit %d", code)
	}
	if code, _, errOut := run(t, api, map[string]string{EnvURL: "http://user:secret-in-url@127.0.0.1:1"}, "services"); code != ExitUsage || strings.Contains(errOut, "secret-in-url") {
		t.Errorf("token in the URL: exit %d, stderr %q", code, errOut)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-the-file-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	api.calls = nil
	if code, _, errOut := run(t, api, map[string]string{EnvToken: ""}, "services", "-token-file", file); code != ExitOK {
		t.Fatalf("-token-file: exit %d, stderr %q", code, errOut)
	}
	if got := api.calls[0].Auth; got != "Bearer from-the-file-0123456789" {
		t.Errorf("Authorization %q, want the file's token", got)
	}
}

// TestJSONIsWhatTheServerSent: -o json passes records through with the
// fields the CLI does not know.
func TestJSONIsWhatTheServerSent(t *testing.T) {
	api := &fakeAPI{answers: map[string]func() (int, string){
		"GET /api/jobs": answer(200, `{"jobs":[{"id":3,"status":"succeeded","pushes":4,"future_field":{"a":1}}]}`),
	}}
	code, out, errOut := run(t, api, nil, "jobs", "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct{ Jobs []map[string]any }
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(got.Jobs) != 1 || got.Jobs[0]["future_field"] == nil || got.Jobs[0]["pushes"] != 4.0 {
		t.Errorf("jobs JSON lost fields: %s", out)
	}
}

// TestTables: the default output is aligned columns a person reads.
func TestTables(t *testing.T) {
	api := &fakeAPI{answers: map[string]func() (int, string){
		"GET /api/services/shop_api/tags": answer(200, `{"service":"shop_api","tags":[{"tag":"main-20261126101500","status":"succeeded","branch":"main","job":12},{"tag":"main-20261125090000","status":"unknown","branch":"main"}]}`),
	}}
	_, out, _ := run(t, api, nil, "tags", "shop_api")
	want := "TAG                  STATUS     BRANCH  JOB\nmain-20261126101500  succeeded  main    12\nmain-20261125090000  unknown    main    -\n"
	if out != want {
		t.Errorf("tags table:\n%s\nwant:\n%s", out, want)
	}
}

// TestBadCommandLines are usage errors that send nothing.
func TestBadCommandLines(t *testing.T) {
	for _, args := range [][]string{
		{"rollback"},
		{"deploy", "shop"},
		{"log", "x"},
		{"scale", "svc"},
		{"jobs", "-o", "yaml"},
		{"tags", "../jobs"},
	} {
		api := &fakeAPI{}
		code, _, errOut := run(t, api, nil, args...)
		if code == ExitOK || len(api.calls) != 0 {
			t.Errorf("%q: exit %d, %d requests, stderr %q", args, code, len(api.calls), errOut)
		}
	}
}
