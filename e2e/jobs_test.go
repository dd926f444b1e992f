package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

// jobStack is one image and one service, for tests of the job system.
type jobStack struct {
	repo *testenv.GitRepo
	sh   *testenv.Swarmhook
	svc  string
}

func newJobStack(t *testing.T) *jobStack {
	c := testenv.Require(t)
	ns := testenv.Unique("jobs")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	s := &jobStack{repo: testenv.NewGitRepo(t), svc: ns + "-web"}
	initial := testenv.BuildAndPush(t, c, fmt.Sprintf("%s/%s/web:init", testenv.Registry(), ns), "v0")
	testenv.CreateService(t, c, s.svc, initial, testenv.ServiceOptions{})
	s.sh = testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - name: jobs
    repo: %s
    secret: %s
    images: [{name: %s/web}]
    deploy: [{branch: main, services: [%s], update: {monitor: 1s}}]
`, testenv.Registry(), s.repo.URL(), secret, ns, s.svc))
	return s
}

func (s *jobStack) push(t *testing.T, commit string) int64 {
	t.Helper()
	code, body := s.sh.GitHubPush("jobs", secret, testenv.GitHubPushBody("main", strings.Repeat("1", 40), commit, "x"))
	if code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	var a struct{ Job int64 }
	json.Unmarshal(body, &a)
	return a.Job
}

func (s *jobStack) job(t *testing.T, id int64) testenv.Job {
	t.Helper()
	code, body := s.sh.API(http.MethodGet, fmt.Sprintf("/api/jobs/%d", id), nil)
	if code != http.StatusOK {
		t.Fatalf("job %d: %d %s", id, code, body)
	}
	var j testenv.Job
	json.Unmarshal(body, &j)
	return j
}

func TestBurstOfTwentyPushesBuildsTwice(t *testing.T) {
	t.Parallel()
	s := newJobStack(t)
	c := testenv.Require(t)
	var commits []string
	for i := 0; i < 20; i++ {
		commits = append(commits, s.repo.Commit(fmt.Sprintf("v%d", i), testenv.AppFiles(t, fmt.Sprintf("v%d", i))))
	}
	var ids []int64
	start := time.Now()
	for _, commit := range commits {
		ids = append(ids, s.push(t, commit))
		time.Sleep(90 * time.Millisecond)
	}
	if took := time.Since(start); took > 2500*time.Millisecond {
		t.Logf("pushes took %s (the machine is slow); coalescing is checked all the same", took)
	}
	last, log := s.sh.WaitJob(ids[19], 4*time.Minute)
	if last.Status != "succeeded" || last.Commit != commits[19] {
		t.Fatalf("last push: %s at %s, want succeeded at %s\n%s", last.Status, last.Commit, commits[19], log)
	}
	// Every push is in a job, and each job counts the pushes it took:
	// later pushes join the build that waits instead of queueing their own.
	built, answered := 0, map[int64]int{}
	for _, id := range ids {
		answered[id]++
	}
	for id, pushes := range answered {
		j := s.job(t, id)
		switch j.Status {
		case "succeeded", "failed":
			built++
		case "superseded":
		default:
			t.Errorf("job %d is %s", id, j.Status)
		}
		if j.Pushes != pushes {
			t.Errorf("job %d counts %d pushes, %d pushes were answered with it", id, j.Pushes, pushes)
		}
	}
	if built > 2 {
		t.Errorf("%d builds ran for 20 pushes, want at most 2", built)
	}
	// Both builds check out the branch's tip, which the last push named
	// before the first build started; images are reproducible, so the
	// second build's digest is the first's and its deploy may be
	// unchanged, leaving the first tag on the service: compare digests.
	if got := testenv.Inspect(t, c, s.svc).Spec.TaskTemplate.ContainerSpec.Image; !strings.HasSuffix(got, "@"+last.Images[0].Digest) {
		t.Errorf("service runs %s, want the last push's digest %s", got, last.Images[0].Digest)
	}
}

func TestKilledDuringBuildIsInterruptedThenDeploysAgain(t *testing.T) {
	t.Parallel()
	s := newJobStack(t)
	c := testenv.Require(t)
	before := testenv.Inspect(t, c, s.svc).Spec.TaskTemplate.ContainerSpec.Image

	// A build that takes a while: the kill lands in its middle.
	slow := testenv.AppFiles(t, "slow")
	slow["Dockerfile"] = "FROM swarmhook-test/busybox:latest\nRUN sleep 15\nCOPY app /app\nCOPY version.txt /version.txt\nENTRYPOINT [\"/app\"]\n"
	id := s.push(t, s.repo.Commit("slow", slow))
	testenv.Eventually(t, time.Minute, 100*time.Millisecond, func() (bool, string) {
		_, log := s.sh.API(http.MethodGet, fmt.Sprintf("/api/jobs/%d/log", id), nil)
		return strings.Contains(string(log), "RUN sleep 15"), "build not started yet"
	})
	s.sh.Kill()
	s.sh.Restart()

	j := s.job(t, id)
	if j.Status != "interrupted" || j.Error == "" {
		t.Errorf("killed job is %s (%q), want interrupted with a reason", j.Status, j.Error)
	}
	if got := testenv.Inspect(t, c, s.svc).Spec.TaskTemplate.ContainerSpec.Image; got != before {
		t.Errorf("service changed by a killed job: %s", got)
	}

	next := s.push(t, s.repo.Commit("fast", testenv.AppFiles(t, "fast")))
	if j, log := s.sh.WaitJob(next, 3*time.Minute); j.Status != "succeeded" {
		t.Fatalf("push after restart: %s %s\n%s", j.Status, j.Error, log)
	}
}
