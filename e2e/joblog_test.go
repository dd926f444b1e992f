package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/internal/testenv"
	"github.com/swarmhook/swarmhook/webhook"
)

// shopConfig is the config of project shop, which builds image <ns>/api
// from repo's main branch and then deploys as deploy (the project's
// deploy: list in YAML, indented for it) says.
func shopConfig(repo *testenv.GitRepo, ns, deploy string) string {
	return fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - name: shop
    repo: %s
    secret: %s
    branches: [main]
    images: [{name: %s/api}]
%s`, testenv.Registry(), repo.URL(), secret, ns, deploy)
}

// TestOutsideTextCannotForgeJobLog pushes as a pusher named
// "mallory\nSUCCEEDED" a commit whose message carries a terminal escape
// and a carriage return, to a project whose build fails: the job log
// has no line saying SUCCEEDED and no raw control character, and shows
// the name and message escaped.
func TestOutsideTextCannotForgeJobLog(t *testing.T) {
	t.Parallel()
	c := testenv.Require(t)
	ns := testenv.Unique("e2e")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	repo := testenv.NewGitRepo(t)
	sh := testenv.StartSwarmhook(t, shopConfig(repo, ns, ""))

	files := testenv.AppFiles(t, "api v1")
	files["Dockerfile"] = "FROM swarmhook-test/busybox:latest\nRUN false\n"
	commit := repo.Commit("fix\x1b[2J\rSUCCEEDED", files)
	body, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": strings.Repeat("0", 40), "after": commit,
		"repository":  map[string]any{"clone_url": "https://git.example.com/team/app.git"},
		"pusher":      map[string]any{"name": "mallory\nSUCCEEDED"},
		"head_commit": map[string]any{"id": commit, "message": "fix\x1b[2J\rSUCCEEDED"},
	})
	h := http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {"push"},
		"X-Github-Delivery": {testenv.Unique("d-")}, "X-Hub-Signature-256": {webhook.Sign(secret, body)}}
	code, answer := sh.Do(http.MethodPost, "/hooks/shop", h, body)
	var a struct{ Job int64 }
	if json.Unmarshal(answer, &a); code != http.StatusAccepted || a.Job == 0 {
		t.Fatalf("push answered %d %s, want 202", code, answer)
	}
	j, log := sh.WaitJob(a.Job, 4*time.Minute)
	if j.Status != "failed" {
		t.Fatalf("job %s, want failed (the Dockerfile runs false)\n%s", j.Status, log)
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "SUCCEEDED") {
			t.Errorf("a line of the log says SUCCEEDED:\n%s", log)
		}
	}
	if strings.ContainsAny(log, "\x1b\r") {
		t.Errorf("raw control characters in the log: %q", log)
	}
	for _, want := range []string{`("mallory\nSUCCEEDED")`, `(fix\x1b[2J\rSUCCEEDED)`} {
		if !strings.Contains(log, want) {
			t.Errorf("log does not show %s:\n%s", want, log)
		}
	}
}
