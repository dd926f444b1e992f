package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

// opsStack: one image, services a (3 replicas), b and c updated in that
// order on main with on_failure: stop, and r1, r2 on release with
// on_failure: rollback_all. r2 carries a spec-level healthcheck that
// only a "good" version passes.
type opsStack struct {
	c    *client.Client
	ns   string
	repo *testenv.GitRepo
	sh   *testenv.Swarmhook
	svc  map[string]string
}

func newOpsStack(t *testing.T) *opsStack {
	c := testenv.Require(t)
	ns := testenv.Unique("ops")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	s := &opsStack{c: c, ns: ns, repo: testenv.NewGitRepo(t), svc: map[string]string{}}
	for _, n := range []string{"a", "b", "c", "r1", "r2"} {
		s.svc[n] = ns + "-" + n
	}
	initial := testenv.BuildAndPushDockerfile(t, c, fmt.Sprintf("%s/%s/app:init", testenv.Registry(), ns), "good v0", testenv.HealthyDockerfile)
	testenv.CreateService(t, c, s.svc["a"], initial, testenv.ServiceOptions{Replicas: 3})
	for _, n := range []string{"b", "c", "r1"} {
		testenv.CreateService(t, c, s.svc[n], initial, testenv.ServiceOptions{})
	}
	testenv.CreateService(t, c, s.svc["r2"], initial, testenv.ServiceOptions{Healthcheck: []string{"CMD-SHELL", "grep -q good /version.txt"}})
	s.sh = testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - name: ops
    repo: %s
    secret: %s
    images: [{name: %s/app}]
    deploy:
      - branch: main
        services: [%s, %s, %s]
        update: {parallelism: 1, monitor: 3s, failure_action: rollback}
        timeout: 2m
      - branch: release
        on_failure: rollback_all
        services: [%s, %s]
        update: {parallelism: 1, monitor: 3s, failure_action: rollback}
        timeout: 2m
`, testenv.Registry(), s.repo.URL(), secret, ns, s.svc["a"], s.svc["b"], s.svc["c"], s.svc["r1"], s.svc["r2"]))
	return s
}

// push commits version (healthy unless broken) on branch and waits for
// the job.
func (s *opsStack) push(t *testing.T, branch, version string, broken bool) testenv.Job {
	t.Helper()
	j, _ := s.sh.PushApp(s.repo, "ops", secret, branch, version, broken)
	return j
}

func (s *opsStack) image(t *testing.T, n string) string {
	return testenv.Inspect(t, s.c, s.svc[n]).Spec.TaskTemplate.ContainerSpec.Image
}

func (s *opsStack) post(t *testing.T, path, token, body string) (int, testenv.Job, string) {
	t.Helper()
	code, raw := s.sh.Do(http.MethodPost, path, http.Header{"Authorization": {"Bearer " + token}, "Content-Type": {"application/json"}}, []byte(body))
	var j testenv.Job
	json.Unmarshal(raw, &j)
	return code, j, string(raw)
}

func TestRollingDeploysAndChatOps(t *testing.T) {
	t.Parallel()
	s := newOpsStack(t)

	// v1: every service updated, a one task at a time.
	v1 := s.push(t, "main", "good v1", false)
	if v1.Status != "succeeded" {
		t.Fatalf("v1: %s %s", v1.Status, v1.Error)
	}
	checkOneAtATime(t, s.c, s.svc["a"], v1.Images[0].Ref)

	// v2 fails its healthcheck: Swarm rolls a back, b and c untouched.
	v2 := s.push(t, "main", "good v2 but unhealthy", true)
	if v2.Status != "failed" || v2.Services[0].Outcome != "rolled_back" {
		t.Fatalf("v2: %s, services %+v", v2.Status, v2.Services)
	}
	for _, n := range []string{"b", "c"} {
		if got := s.image(t, n); got != v1.Images[0].Ref {
			t.Errorf("%s runs %s after a's failure, want v1 %s", n, got, v1.Images[0].Ref)
		}
	}
	if got := s.image(t, "a"); got != v1.Images[0].Ref {
		t.Errorf("a runs %s after Swarm's rollback, want %s", got, v1.Images[0].Ref)
	}

	v3 := s.push(t, "main", "good v3", false)
	if v3.Status != "succeeded" {
		t.Fatalf("v3: %s %s", v3.Status, v3.Error)
	}

	t.Run("auth", func(t *testing.T) {
		if code, _, body := s.post(t, "/api/services/"+s.svc["c"]+"/rollback", "wrong-token-0123456789", ""); code != 401 {
			t.Errorf("wrong token: %d %s", code, body)
		}
		if code, _, body := s.post(t, "/api/services/"+s.svc["c"]+"/rollback", testenv.ReadToken, ""); code != 403 {
			t.Errorf("read token on rollback: %d %s", code, body)
		}
		if got := s.image(t, "c"); got != v3.Images[0].Ref {
			t.Errorf("c changed by refused calls: %s", got)
		}
	})

	t.Run("unknown tag", func(t *testing.T) {
		code, _, body := s.post(t, "/api/services/"+s.svc["c"]+"/rollback", s.sh.Token, `{"tag":"main-20000101000000"}`)
		if code != 404 || !strings.Contains(body, v1.Images[0].Tag) {
			t.Errorf("unknown tag: %d %s; want 404 naming %s", code, body, v1.Images[0].Tag)
		}
		if got := s.image(t, "c"); got != v3.Images[0].Ref {
			t.Errorf("c changed by an unknown tag: %s", got)
		}
	})

	t.Run("rollback to tag, then native rollback", func(t *testing.T) {
		code, j, body := s.post(t, "/api/services/"+s.svc["c"]+"/rollback?wait=1", s.sh.Token, fmt.Sprintf(`{"tag":%q}`, v1.Images[0].Tag))
		if code != 200 || j.Status != "succeeded" {
			t.Fatalf("rollback to tag: %d %s", code, body)
		}
		if got := s.image(t, "c"); got != v1.Images[0].Ref {
			t.Errorf("c runs %s, want %s", got, v1.Images[0].Ref)
		}
		code, j, body = s.post(t, "/api/services/"+s.svc["c"]+"/rollback?wait=1", s.sh.Token, "")
		if code != 200 || j.Services[0].Outcome != "rolled_back" {
			t.Fatalf("native rollback: %d %s", code, body)
		}
		if got := s.image(t, "c"); got != v3.Images[0].Ref {
			t.Errorf("after native rollback c runs %s, want previous %s", got, v3.Images[0].Ref)
		}
	})

	t.Run("two rollbacks of one service take turns", func(t *testing.T) {
		var wg sync.WaitGroup
		jobs := make([]testenv.Job, 2)
		for i, tag := range []string{v1.Images[0].Tag, v3.Images[0].Tag} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, jobs[i], _ = s.post(t, "/api/services/"+s.svc["b"]+"/rollback?wait=1", s.sh.Token, fmt.Sprintf(`{"tag":%q}`, tag))
			}()
		}
		wg.Wait()
		a, b := jobs[0].Services, jobs[1].Services
		if len(a) != 1 || len(b) != 1 {
			t.Fatalf("jobs: %+v", jobs)
		}
		if a[0].Started.Before(b[0].Finished) && b[0].Started.Before(a[0].Finished) {
			t.Errorf("rollbacks overlapped: %v-%v and %v-%v", a[0].Started, a[0].Finished, b[0].Started, b[0].Finished)
		}
	})

	t.Run("same digest is unchanged, no restart", func(t *testing.T) {
		before := taskIDs(t, s.c, s.svc["a"])
		code, j, body := s.post(t, "/api/projects/ops/deploy?wait=1", s.sh.Token, fmt.Sprintf(`{"branch":"main","tag":%q}`, v3.Images[0].Tag))
		if code != 200 {
			t.Fatalf("deploy tag: %d %s", code, body)
		}
		if j.Services[0].Outcome != "unchanged" {
			t.Errorf("a outcome %s, want unchanged", j.Services[0].Outcome)
		}
		if after := taskIDs(t, s.c, s.svc["a"]); !slices.Equal(before, after) {
			t.Errorf("tasks restarted: %v -> %v", before, after)
		}
	})

	t.Run("rollback_all", func(t *testing.T) {
		good := s.push(t, "release", "good r1", false)
		if good.Status != "succeeded" {
			t.Fatalf("release good: %s %s", good.Status, good.Error)
		}
		// "bad" fails r2's own healthcheck only: r1 is updated, r2 rolled
		// back by Swarm, then r1 returned by rollback_all.
		bad := s.push(t, "release", "bad r2", false)
		if bad.Status != "failed" {
			t.Fatalf("release bad: %s", bad.Status)
		}
		if got := s.image(t, "r1"); got != good.Images[0].Ref {
			t.Errorf("r1 runs %s after rollback_all, want %s", got, good.Images[0].Ref)
		}
		if got := s.image(t, "r2"); got != good.Images[0].Ref {
			t.Errorf("r2 runs %s, want %s", got, good.Images[0].Ref)
		}
	})
}

// checkOneAtATime reads Swarm's task timestamps: with parallelism 1 and
// stop-first, each new task is created only after the previous new one
// was running.
func checkOneAtATime(t *testing.T, c *client.Client, service, image string) {
	t.Helper()
	tasks, err := c.TaskList(context.Background(), swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", service))})
	if err != nil {
		t.Fatal(err)
	}
	var fresh []swarm.Task
	for _, tk := range tasks {
		if tk.Spec.ContainerSpec.Image == image && tk.Status.State == swarm.TaskStateRunning {
			fresh = append(fresh, tk)
		}
	}
	if len(fresh) != 3 {
		t.Fatalf("%d tasks run the new image, want 3", len(fresh))
	}
	slices.SortFunc(fresh, func(a, b swarm.Task) int { return a.CreatedAt.Compare(b.CreatedAt) })
	for i := 1; i < len(fresh); i++ {
		if fresh[i].CreatedAt.Before(fresh[i-1].Status.Timestamp) {
			t.Errorf("task %d created %s, before task %d was running at %s", i, fresh[i].CreatedAt, i-1, fresh[i-1].Status.Timestamp)
		}
	}
}

func taskIDs(t *testing.T, c *client.Client, service string) []string {
	tasks, err := c.TaskList(context.Background(), swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", service), filters.Arg("desired-state", "running"))})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tk := range tasks {
		ids = append(ids, tk.ID)
	}
	slices.Sort(ids)
	return ids
}
