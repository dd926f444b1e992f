package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

// Tokens besides StartSwarmhook's own: alice promotes and may approve,
// bob only approves, ops overrides windows and freezes.
const (
	aliceToken = "alice-token-0123456789abc"
	bobToken   = "bob-token-0123456789abcde"
	opsToken   = "ops-token-0123456789abcde"
)

// envJob is the part of a job record the environment tests read.
type envJob struct {
	testenv.Job
	Wait *struct {
		For   string    `json:"for"`
		Until time.Time `json:"until"`
	} `json:"wait"`
	Decisions []struct {
		Verdict, Who, Reason string
	} `json:"decisions"`
	Finished time.Time `json:"finished"`
}

// envStack: one image; staging deploys on push to main, production and
// canary take promotions from staging only and need an approval (canary's
// expires in 3 s), and "late" deploys pushes to branch late in a window
// that opens some seconds after the stack starts.
type envStack struct {
	c    *client.Client
	ns   string
	repo *testenv.GitRepo
	sh   *testenv.Swarmhook
	svc  map[string]string
	// opens is when the late target's window opens.
	opens time.Time
}

func newEnvStack(t *testing.T, windowIn time.Duration) *envStack {
	c := testenv.Require(t)
	ns := testenv.Unique("env")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	s := &envStack{c: c, ns: ns, repo: testenv.NewGitRepo(t), svc: map[string]string{}}
	// The version every push below commits: the engine has its layers
	// cached, so each build takes seconds.
	initial := testenv.BuildAndPushDockerfile(t, c, fmt.Sprintf("%s/%s/app:init", testenv.Registry(), ns), "good v1", testenv.HealthyDockerfile)
	for _, n := range []string{"staging", "production", "canary", "late"} {
		s.svc[n] = ns + "-" + n
		testenv.CreateService(t, c, s.svc[n], initial, testenv.ServiceOptions{})
	}
	testenv.GoBinary(t, "./cmd/swarmhook") // built (and cached) before the window's clock starts
	s.opens = time.Now().UTC().Add(windowIn).Truncate(time.Second)
	o := s.opens
	// The body goes on the tokens list StartSwarmhook writes.
	s.sh = testenv.StartSwarmhook(t, fmt.Sprintf(`  - {name: alice, token: %s, scopes: [deploy, approve, read]}
  - {name: bob, token: %s, scopes: [approve]}
  - {name: ops, token: %s, scopes: [override, read]}
registry: {host: %q, insecure: true}
projects:
  - name: env
    repo: %s
    secret: %s
    images: [{name: %s/app}]
    deploy:
      - {branch: main, environment: staging, services: [%s], update: {monitor: 1s}, timeout: 2m}
      - {environment: production, promote_from: staging, approve: {timeout: 10m}, services: [%s], update: {monitor: 1s}, timeout: 2m}
      - {environment: canary, promote_from: staging, approve: {timeout: 3s}, services: [%s], update: {monitor: 1s}, timeout: 2m}
      - branch: late
        environment: late
        windows: [{start: "%d %d %d %d %d *", duration: 1h, timezone: UTC}]
        services: [%s]
        update: {monitor: 1s}
        timeout: 2m
`, aliceToken, bobToken, opsToken, testenv.Registry(), s.repo.URL(), secret, ns,
		s.svc["staging"], s.svc["production"], s.svc["canary"],
		o.Second(), o.Minute(), o.Hour(), o.Day(), int(o.Month()), s.svc["late"]))
	return s
}

func (s *envStack) image(t *testing.T, n string) string {
	return testenv.Inspect(t, s.c, s.svc[n]).Spec.TaskTemplate.ContainerSpec.Image
}

func (s *envStack) call(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	code, raw := s.sh.Do(method, path, http.Header{"Authorization": {"Bearer " + token}, "Content-Type": {"application/json"}}, []byte(body))
	return code, string(raw)
}

func (s *envStack) job(t *testing.T, id int64) envJob {
	t.Helper()
	code, raw := s.sh.API(http.MethodGet, fmt.Sprintf("/api/jobs/%d", id), nil)
	var j envJob
	if code != http.StatusOK || json.Unmarshal(raw, &j) != nil {
		t.Fatalf("GET job %d: %d %s", id, code, raw)
	}
	return j
}

// waitFor polls job id until it is in a status other than those in
// past, and returns it.
func (s *envStack) waitFor(t *testing.T, id int64, timeout time.Duration, past ...string) envJob {
	t.Helper()
	var j envJob
	testenv.Eventually(t, timeout, 200*time.Millisecond, func() (bool, string) {
		j = s.job(t, id)
		for _, p := range past {
			if j.Status == p {
				return false, "job is " + j.Status
			}
		}
		return true, ""
	})
	return j
}

// promote starts a promotion as token and returns its job id.
func (s *envStack) promote(t *testing.T, token, from, to string) int64 {
	t.Helper()
	code, body := s.call(t, http.MethodPost, "/api/projects/env/promote", token, fmt.Sprintf(`{"from": %q, "to": %q}`, from, to))
	var a struct{ Job int64 }
	if code != http.StatusAccepted || json.Unmarshal([]byte(body), &a) != nil || a.Job == 0 {
		t.Fatalf("promote %s to %s: %d %s", from, to, code, body)
	}
	return a.Job
}

func TestEnvironmentsPromoteApproveExpire(t *testing.T) {
	t.Parallel()
	s := newEnvStack(t, time.Hour) // the late window plays no part here
	before := map[string]string{}
	for _, n := range []string{"production", "canary"} {
		before[n] = s.image(t, n)
	}

	staged, _ := s.sh.PushApp(s.repo, "env", secret, "main", "good v1", false)
	if staged.Status != "succeeded" {
		t.Fatalf("push to main: %s %s", staged.Status, staged.Error)
	}
	stagingRef := s.image(t, "staging")
	if stagingRef != staged.Images[0].Ref {
		t.Fatalf("staging runs %s, want the build's %s", stagingRef, staged.Images[0].Ref)
	}
	if s.image(t, "production") != before["production"] {
		t.Fatal("a push to main deployed to production, which takes promotions only")
	}

	id := s.promote(t, aliceToken, "staging", "production")
	j := s.waitFor(t, id, time.Minute, "queued", "running")
	if j.Status != "waiting" || j.Wait == nil || j.Wait.For != "approval" {
		t.Fatalf("promotion: %s, wait %+v; want waiting for approval", j.Status, j.Wait)
	}

	t.Run("own approval refused", func(t *testing.T) {
		code, body := s.call(t, http.MethodPost, fmt.Sprintf("/api/jobs/%d/approve", id), aliceToken, "")
		if code != http.StatusForbidden || !strings.Contains(body, "started") {
			t.Errorf("alice approving her own promotion: %d %s, want 403", code, body)
		}
		if s.image(t, "production") != before["production"] {
			t.Error("production changed after a refused approval")
		}
	})

	t.Run("still waiting after a restart", func(t *testing.T) {
		s.sh.Restart()
		if j := s.job(t, id); j.Status != "waiting" || j.Wait == nil || j.Wait.For != "approval" {
			t.Fatalf("after restart: %s %+v, want still waiting for approval", j.Status, j.Wait)
		}
	})

	t.Run("another token's approval deploys the very digest", func(t *testing.T) {
		code, body := s.call(t, http.MethodPost, fmt.Sprintf("/api/jobs/%d/approve", id), bobToken, "")
		if code != http.StatusOK {
			t.Fatalf("bob approving: %d %s", code, body)
		}
		j := s.waitFor(t, id, 3*time.Minute, "waiting", "queued", "running")
		if j.Status != "succeeded" {
			t.Fatalf("promotion: %s %s", j.Status, j.Error)
		}
		if got := s.image(t, "production"); got != stagingRef {
			t.Errorf("production runs %s, want staging's %s byte for byte", got, stagingRef)
		}
		for _, st := range j.Stages {
			if st.Name == "build" || st.Name == "push" || st.Name == "fetch" {
				t.Errorf("a promotion ran stage %s", st.Name)
			}
		}
		if len(j.Images) != 1 || j.Images[0].Digest != staged.Images[0].Digest {
			t.Errorf("promoted images %+v, want staging's digest %s", j.Images, staged.Images[0].Digest)
		}
		if len(j.Decisions) != 1 || j.Decisions[0].Who != "bob" || j.Decisions[0].Verdict != "approved" {
			t.Errorf("decisions = %+v, want bob's approval", j.Decisions)
		}
	})

	t.Run("unanswered approval expires", func(t *testing.T) {
		id := s.promote(t, s.sh.Token, "staging", "canary")
		j := s.waitFor(t, id, time.Minute, "queued", "running", "waiting")
		if j.Status != "expired" || !strings.Contains(j.Error, "no approval") {
			t.Fatalf("canary promotion: %s %q, want expired", j.Status, j.Error)
		}
		if j.Wait == nil || j.Wait.For != "approval" {
			t.Errorf("the record must say it waited for an approval: %+v", j.Wait)
		}
		if got := s.image(t, "canary"); got != before["canary"] {
			t.Errorf("canary runs %s after an expired approval, want %s", got, before["canary"])
		}
		if code, body := s.call(t, http.MethodPost, fmt.Sprintf("/api/jobs/%d/approve", id), bobToken, ""); code != http.StatusConflict {
			t.Errorf("approving an expired job: %d %s, want 409", code, body)
		}
	})
}

func TestPushInAClosedWindowDeploysWhenItOpens(t *testing.T) {
	t.Parallel()
	s := newEnvStack(t, 30*time.Second)
	before := s.image(t, "late")

	j, _ := s.sh.PushApp(s.repo, "env", secret, "late", "good v1", false)
	if !time.Now().Before(s.opens) {
		t.Fatalf("the build ended after the window opened (%s): nothing shows it waited; the machine is too slow for this test", s.opens)
	}
	held := s.job(t, j.ID)
	if held.Status != "waiting" || held.Wait == nil || held.Wait.For != "window" || !held.Wait.Until.Equal(s.opens) {
		t.Fatalf("push to late: %s, wait %+v; want waiting for the window opening at %s", held.Status, held.Wait, s.opens)
	}
	if len(held.Images) != 1 || held.Images[0].Digest == "" {
		t.Fatalf("a deferred build is pushed before it waits: %+v", held.Images)
	}
	if got := s.image(t, "late"); got != before {
		t.Fatalf("late runs %s before its window opened", got)
	}
	_, metrics := s.sh.Do(http.MethodGet, "/metrics", nil, nil)
	if !strings.Contains(string(metrics), `swarmhook_deploys_deferred_total{project="env",reason="window"} 1`) {
		t.Error("/metrics does not count the deferred deploy")
	}

	done := s.waitFor(t, j.ID, 3*time.Minute, "waiting", "queued", "running")
	if done.Status != "succeeded" {
		t.Fatalf("deferred deploy: %s %s", done.Status, done.Error)
	}
	if done.Finished.Before(s.opens) {
		t.Errorf("finished at %s, before the window opened at %s", done.Finished, s.opens)
	}
	if got := s.image(t, "late"); got != held.Images[0].Ref {
		t.Errorf("late runs %s, want the deferred build %s", got, held.Images[0].Ref)
	}
}

func TestFreezeAndOverride(t *testing.T) {
	t.Parallel()
	s := newEnvStack(t, time.Hour)
	before := s.image(t, "staging")

	code, body := s.call(t, http.MethodPost, "/api/freeze", opsToken, `{"target": "env/staging", "until": "1h", "reason": "launch day"}`)
	if code != http.StatusOK {
		t.Fatalf("freeze: %d %s", code, body)
	}
	j, _ := s.sh.PushApp(s.repo, "env", secret, "main", "good v1", false)
	held := s.job(t, j.ID)
	if held.Status != "waiting" || held.Wait == nil || held.Wait.For != "freeze" {
		t.Fatalf("push during a freeze: %s %+v, want waiting for the freeze", held.Status, held.Wait)
	}
	if got := s.image(t, "staging"); got != before {
		t.Fatalf("staging changed during its freeze: %s", got)
	}
	if code, body := s.call(t, http.MethodPost, fmt.Sprintf("/api/jobs/%d/deploy-now", j.ID), bobToken, `{"reason": "x"}`); code != http.StatusForbidden {
		t.Errorf("override without the override scope: %d %s", code, body)
	}
	code, body = s.call(t, http.MethodPost, fmt.Sprintf("/api/jobs/%d/deploy-now", j.ID), opsToken, `{"reason": "security fix"}`)
	if code != http.StatusOK {
		t.Fatalf("deploy-now: %d %s", code, body)
	}
	done := s.waitFor(t, j.ID, 3*time.Minute, "waiting", "queued", "running")
	if done.Status != "succeeded" {
		t.Fatalf("overridden deploy: %s %s", done.Status, done.Error)
	}
	if len(done.Decisions) != 1 || done.Decisions[0].Who != "ops" || done.Decisions[0].Reason != "security fix" {
		t.Errorf("decisions = %+v, want ops' override and its reason", done.Decisions)
	}
	if got := s.image(t, "staging"); got != held.Images[0].Ref {
		t.Errorf("staging runs %s, want %s", got, held.Images[0].Ref)
	}
	_, metrics := s.sh.Do(http.MethodGet, "/metrics", nil, nil)
	for _, want := range []string{
		`swarmhook_deploys_deferred_total{project="env",reason="freeze"} 1`,
		`swarmhook_deploys_overridden_total{project="env"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestCLIPromoteApproveFreeze runs the CLI twins of the environment
// calls against a real server: promote, approve (refused to the token
// that promoted), reject, freeze.
func TestCLIPromoteApproveFreeze(t *testing.T) {
	t.Parallel()
	s := newEnvStack(t, time.Hour)
	staged, _ := s.sh.PushApp(s.repo, "env", secret, "main", "good v1", false)
	if staged.Status != "succeeded" {
		t.Fatalf("push to main: %s %s", staged.Status, staged.Error)
	}
	canaryBefore := s.image(t, "canary")

	var started struct{ Job int64 }
	cliJSON(t, s.sh, &started, "promote", "env", "staging", "production")
	if j := s.waitFor(t, started.Job, time.Minute, "queued", "running"); j.Status != "waiting" {
		t.Fatalf("promotion: %s %s, want waiting for approval", j.Status, j.Error)
	}
	if code, _, errOut := cliRun(t, s.sh, "approve", fmt.Sprint(started.Job)); code != 1 || !strings.Contains(errOut, "403") {
		t.Errorf("approve by the promoting token: exit %d %q, want 1 and 403", code, errOut)
	}
	if code, out, errOut := cliRunAs(t, s.sh, bobToken, "approve", fmt.Sprint(started.Job)); code != 0 {
		t.Fatalf("approve by bob: exit %d\n%s%s", code, out, errOut)
	}
	if j := s.waitFor(t, started.Job, 3*time.Minute, "waiting", "queued", "running"); j.Status != "succeeded" {
		t.Fatalf("approved promotion: %s %s", j.Status, j.Error)
	}
	if got := s.image(t, "production"); got != staged.Images[0].Ref {
		t.Errorf("production runs %s, want %s", got, staged.Images[0].Ref)
	}

	cliJSON(t, s.sh, &started, "promote", "env", "staging", "canary")
	s.waitFor(t, started.Job, time.Minute, "queued", "running")
	if code, out, errOut := cliRunAs(t, s.sh, bobToken, "reject", fmt.Sprint(started.Job)); code != 0 {
		t.Fatalf("reject: exit %d\n%s%s", code, out, errOut)
	}
	if j := s.job(t, started.Job); j.Status != "rejected" || !strings.Contains(j.Error, "rejected by bob") {
		t.Errorf("rejected promotion: %s %q", j.Status, j.Error)
	}
	if got := s.image(t, "canary"); got != canaryBefore {
		t.Errorf("canary changed by a rejected promotion: %s", got)
	}

	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if code, out, errOut := cliRunAs(t, s.sh, opsToken, "freeze", "env/production", "--until", until, "--reason", "launch"); code != 0 {
		t.Fatalf("freeze: exit %d\n%s%s", code, out, errOut)
	}
	code, body := s.call(t, http.MethodGet, "/api/freezes", opsToken, "")
	if code != http.StatusOK || !strings.Contains(body, `"target":"env/production"`) || !strings.Contains(body, `"who":"ops"`) {
		t.Errorf("GET /api/freezes: %d %s", code, body)
	}
}
