package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

// hostRecorder stands in for Slack and for GitHub's status API: it
// records what swarmhook sends and checks GitHub's request shape.
type hostRecorder struct {
	mu       sync.Mutex
	slack    []string            // message texts
	statuses map[string][]string // commit -> states, in arrival order
	targets  []string
	problems []string
}

const statusToken = "ghp-e2e-status-token-0123"

func (h *hostRecorder) handler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var m map[string]string
	json.Unmarshal(body, &m)
	h.mu.Lock()
	defer h.mu.Unlock()
	bad := func(format string, args ...any) { h.problems = append(h.problems, fmt.Sprintf(format, args...)) }
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		bad("%s %s with Content-Type %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/services/"):
		h.slack = append(h.slack, m["text"])
	case strings.HasPrefix(r.URL.Path, "/repos/acme/shop/statuses/"):
		if got := r.Header.Get("Authorization"); got != "Bearer "+statusToken {
			bad("status Authorization %q", got)
		}
		if r.Header.Get("Accept") != "application/vnd.github+json" {
			bad("status Accept %q", r.Header.Get("Accept"))
		}
		if m["context"] != "swarmhook/e2e" || m["description"] == "" {
			bad("status body %s", body)
		}
		sha := strings.TrimPrefix(r.URL.Path, "/repos/acme/shop/statuses/")
		h.statuses[sha] = append(h.statuses[sha], m["state"])
		h.targets = append(h.targets, m["target_url"])
	default:
		bad("unexpected request %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (h *hostRecorder) snapshot() (slack []string, statuses map[string][]string, targets, problems []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	statuses = map[string][]string{}
	for k, v := range h.statuses {
		statuses[k] = append([]string(nil), v...)
	}
	return append([]string(nil), h.slack...), statuses, append([]string(nil), h.targets...), append([]string(nil), h.problems...)
}

func TestPushNotifiesChatAndSetsCommitStatus(t *testing.T) {
	t.Parallel()
	c := testenv.Require(t)
	ns := testenv.Unique("notify")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	svc := ns + "-web"
	repo := testenv.NewGitRepo(t)
	rec := &hostRecorder{statuses: map[string][]string{}}
	host := httptest.NewServer(http.HandlerFunc(rec.handler))
	t.Cleanup(host.Close)

	initial := testenv.BuildAndPush(t, c, fmt.Sprintf("%s/%s/web:init", testenv.Registry(), ns), "v0")
	testenv.CreateService(t, c, svc, initial, testenv.ServiceOptions{})
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
public_url: https://deploy.example.test/
registry: {host: %q, insecure: true}
projects:
  - name: shop
    repo: %s
    secret: %s
    images: [{name: %s/web}]
    deploy: [{branch: main, services: [%s], update: {monitor: 1s}}]
    notify:
      slack: ["%s/services/T0/B0/e2e-secret-path"]
    status: {provider: github, api_url: %q, token: %s, repo: acme/shop, context: swarmhook/e2e}
`, testenv.Registry(), repo.URL(), secret, ns, svc, host.URL, host.URL, statusToken))

	push := func(commit string) int64 {
		t.Helper()
		code, body := sh.GitHubPush("shop", secret, testenv.GitHubPushBody("main", strings.Repeat("1", 40), commit, "x"))
		if code != http.StatusAccepted {
			t.Fatalf("push: %d %s", code, body)
		}
		var a struct{ Job int64 }
		json.Unmarshal(body, &a)
		return a.Job
	}

	// A push that deploys: pending when it starts, success at the end.
	good := repo.Commit("v1", testenv.AppFiles(t, "v1"))
	id := push(good)
	if j, log := sh.WaitJob(id, 3*time.Minute); j.Status != "succeeded" {
		t.Fatalf("job %d: %s %s\n%s", id, j.Status, j.Error, log)
	}
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		slack, statuses, _, _ := rec.snapshot()
		return len(slack) == 1 && len(statuses[good]) == 2, fmt.Sprintf("slack %v, statuses %v", slack, statuses)
	})
	slack, statuses, targets, problems := rec.snapshot()
	if got := strings.Join(statuses[good], "→"); got != "pending→success" {
		t.Errorf("statuses of %s: %s, want pending→success", good, got)
	}
	wantLink := fmt.Sprintf("https://deploy.example.test/api/jobs/%d", id)
	for _, target := range targets {
		if target != wantLink {
			t.Errorf("status target_url %q, want %q", target, wantLink)
		}
	}
	if !strings.Contains(slack[0], "shop #") || !strings.Contains(slack[0], "succeeded") || !strings.Contains(slack[0], wantLink) {
		t.Errorf("slack message %q: want the project, the outcome and the job link", slack[0])
	}

	// A push whose build fails: failure status, and chat hears of it.
	broken := testenv.AppFiles(t, "broken")
	broken["Dockerfile"] = "FROM swarmhook-test/busybox:latest\nRUN exit 3\n"
	bad := repo.Commit("broken", broken)
	id = push(bad)
	if j, log := sh.WaitJob(id, 3*time.Minute); j.Status != "failed" {
		t.Fatalf("broken build %d: %s, want failed\n%s", id, j.Status, log)
	}
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		slack, statuses, _, _ := rec.snapshot()
		return len(slack) == 2 && len(statuses[bad]) == 2, fmt.Sprintf("slack %v, statuses %v", slack, statuses)
	})
	slack, statuses, _, problems = rec.snapshot()
	if got := strings.Join(statuses[bad], "→"); got != "pending→failure" {
		t.Errorf("statuses of %s: %s, want pending→failure", bad, got)
	}
	if !strings.Contains(slack[1], "failed") {
		t.Errorf("slack message %q: want failed", slack[1])
	}
	for _, p := range problems {
		t.Errorf("request shape: %s", p)
	}

	// The same run, as Prometheus and a load balancer see it.
	code, body := sh.Do(http.MethodGet, "/metrics", nil, nil)
	for _, want := range []string{
		`swarmhook_notifications_total{kind="status",outcome="delivered"} 4`,
		`swarmhook_notifications_total{kind="slack",outcome="delivered"} 2`,
		`swarmhook_webhook_deliveries_total{outcome="accepted",provider="github"} 2`,
		`swarmhook_jobs_total{action="build",project="shop",status="succeeded"} 1`,
		`swarmhook_jobs_total{action="build",project="shop",status="failed"} 1`,
		`swarmhook_engine_errors_total{op="build"} 1`,
	} {
		if code != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
	if code, body := sh.Do(http.MethodGet, "/readyz", nil, nil); code != http.StatusOK {
		t.Errorf("/readyz on the real engine, registry and store: %d %s", code, body)
	}
	for _, secret := range []string{statusToken, "e2e-secret-path"} {
		if strings.Contains(sh.Output(), secret) {
			t.Errorf("swarmhook's log reveals %q", secret)
		}
	}
}

func TestReadyzNamesAnUnreachableRegistry(t *testing.T) {
	t.Parallel()
	testenv.Require(t)
	port := testenv.FreePort(t) // nothing listens there
	sh := testenv.StartSwarmhook(t, fmt.Sprintf("registry: {host: \"127.0.0.1:%d\", insecure: true}\n", port))
	code, body := sh.Do(http.MethodGet, "/readyz", nil, nil)
	var a struct {
		Failed []string          `json:"failed"`
		Checks map[string]string `json:"checks"`
	}
	json.Unmarshal(body, &a)
	if code != http.StatusServiceUnavailable || strings.Join(a.Failed, ",") != "registry" {
		t.Fatalf("/readyz = %d %s, want 503 naming only the registry", code, body)
	}
	if a.Checks["engine"] != "ok" || a.Checks["store"] != "ok" {
		t.Errorf("engine and store should pass on the real engine: %v", a.Checks)
	}
}
