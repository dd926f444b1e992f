package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/swarmhook/swarmhook/internal/testenv"
	"github.com/swarmhook/swarmhook/registry"
)

const secret = "e2e-webhook-secret"

// stack is a project with two images and three services, as the spine
// issue describes: api and worker run the api image, web the web image
// on a published host port.
type stack struct {
	c        *client.Client
	ns       string
	repo     *testenv.GitRepo
	sh       *testenv.Swarmhook
	reg      *registry.Client
	webPort  int
	services []string
}

func newStack(t *testing.T) *stack {
	c := testenv.Require(t)
	ns := testenv.Unique("e2e")
	s := &stack{c: c, ns: ns, repo: testenv.NewGitRepo(t), webPort: testenv.FreePort(t),
		reg: registry.New(registry.Credentials{Host: testenv.Registry()}, true)}
	s.services = []string{ns + "-api", ns + "-worker", ns + "-web"}
	testenv.RemoveImagesOnCleanup(t, c, ns)

	api := testenv.BuildAndPush(t, c, s.ref("api", "init"), "api v0")
	web := testenv.BuildAndPush(t, c, s.ref("web", "init"), "web v0")
	testenv.CreateService(t, c, s.services[0], api, testenv.ServiceOptions{Replicas: 2})
	testenv.CreateService(t, c, s.services[1], api, testenv.ServiceOptions{Replicas: 1})
	testenv.CreateService(t, c, s.services[2], web, testenv.ServiceOptions{Replicas: 1, HostPort: s.webPort})

	s.sh = testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - name: shop
    repo: %s
    secret: %s
    branches: [main, "feature/**"]
    images:
      - {name: %s/api}
      - {name: %s/web, context: web}
    deploy:
      - branch: main
        services:
          - {name: %s, image: %s/api}
          - %s
          - {name: %s, image: %s/web}
        update: {parallelism: 1, delay: 0s, monitor: 1s}
        timeout: 2m
`, testenv.Registry(), s.repo.URL(), secret, ns, ns, s.services[0], ns, s.services[1], s.services[2], ns))
	return s
}

func (s *stack) ref(image, tag string) string {
	return fmt.Sprintf("%s/%s/%s:%s", testenv.Registry(), s.ns, image, tag)
}

// commit makes a commit whose api and web answer with version.
func (s *stack) commit(t *testing.T, version string, extra map[string]string) string {
	files := map[string]string{}
	for k, v := range testenv.AppFiles(t, "api "+version) {
		files[k] = v
	}
	for k, v := range testenv.AppFiles(t, "web "+version) {
		files["web/"+k] = v
	}
	for k, v := range extra {
		files[k] = v
	}
	return s.repo.Commit("release "+version, files)
}

func (s *stack) push(t *testing.T, commit string) int64 {
	t.Helper()
	code, body := s.sh.GitHubPush("shop", secret, testenv.GitHubPushBody("main", strings.Repeat("0", 39)+"1", commit, "release"))
	if code != http.StatusAccepted {
		t.Fatalf("push answered %d %s, want 202", code, body)
	}
	var a struct{ Job int64 }
	if err := json.Unmarshal(body, &a); err != nil || a.Job == 0 {
		t.Fatalf("push answer %s: %v", body, err)
	}
	return a.Job
}

func (s *stack) digest(t *testing.T, image, tag string) string {
	d, err := s.reg.Digest(context.Background(), s.ns+"/"+image, tag)
	if err != nil {
		t.Fatalf("digest of %s:%s: %v", image, tag, err)
	}
	return d
}

func TestPushBuildsPushesAndRollsOutInOrder(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	commit := s.commit(t, "v1", nil)
	id := s.push(t, commit)
	j, log := s.sh.WaitJob(id, 4*time.Minute)
	if j.Status != "succeeded" {
		t.Fatalf("job %s: %s\n%s", j.Status, j.Error, testenv.TrimLines(log, 40))
	}
	if j.Commit != commit {
		t.Errorf("job commit %s, want %s", j.Commit, commit)
	}

	// Both tags of each image exist, on one digest, the one recorded.
	if len(j.Images) != 2 {
		t.Fatalf("job images = %+v", j.Images)
	}
	for _, im := range j.Images {
		short := strings.TrimPrefix(im.Name, s.ns+"/")
		if !strings.HasPrefix(im.Tag, "main-") || im.LatestTag != "main-latest" {
			t.Errorf("image %s tags %q, %q", im.Name, im.Tag, im.LatestTag)
		}
		ts, latest := s.digest(t, short, im.Tag), s.digest(t, short, im.LatestTag)
		if ts != latest || ts != im.Digest {
			t.Errorf("%s: timestamped %s, latest %s, job %s: want one digest", im.Name, ts, latest, im.Digest)
		}
	}

	// Every service runs the new digest, env untouched, all tasks up.
	want := map[string]string{s.services[0]: j.Images[0].Ref, s.services[1]: j.Images[0].Ref, s.services[2]: j.Images[1].Ref}
	for name, ref := range want {
		svc := testenv.Inspect(t, s.c, name)
		if got := svc.Spec.TaskTemplate.ContainerSpec.Image; got != ref {
			t.Errorf("%s runs %s, want %s", name, got, ref)
		}
		if env := svc.Spec.TaskTemplate.ContainerSpec.Env; len(env) != 1 || env[0] != "KEEP_ME=1" {
			t.Errorf("%s env changed: %v", name, env)
		}
		if svc.Spec.UpdateConfig == nil || svc.Spec.UpdateConfig.Parallelism != 1 {
			t.Errorf("%s update config = %+v", name, svc.Spec.UpdateConfig)
		}
	}

	// Updates ran in the configured order, each after the previous completed,
	// as Swarm itself recorded them.
	var prevDone time.Time
	for i, name := range s.services {
		st := testenv.Inspect(t, s.c, name).UpdateStatus
		if st == nil || st.State != "completed" || st.StartedAt == nil || st.CompletedAt == nil {
			t.Fatalf("%s update status = %+v", name, st)
		}
		if i > 0 && st.StartedAt.Before(prevDone) {
			t.Errorf("%s started %s, before the previous service completed at %s", name, st.StartedAt, prevDone)
		}
		prevDone = *st.CompletedAt
		if j.Services[i].Service != name || j.Services[i].Outcome != "updated" {
			t.Errorf("job service %d = %+v, want %s updated", i, j.Services[i], name)
		}
	}

	// The new version answers on the published port.
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		body, err := testenv.Get(fmt.Sprintf("http://127.0.0.1:%d/", s.webPort))
		return body == "web v1", fmt.Sprintf("web answered %q, %v", body, err)
	})
	for _, stage := range []string{"fetch", "build", "push", "tag"} {
		if !strings.Contains(log, "==> "+stage) {
			t.Errorf("log lacks stage %s", stage)
		}
	}
}

func TestFailingBuildChangesNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	id := s.push(t, s.commit(t, "v1", nil))
	if j, log := s.sh.WaitJob(id, 4*time.Minute); j.Status != "succeeded" {
		t.Fatalf("first deploy %s: %s\n%s", j.Status, j.Error, log)
	}
	latestBefore := map[string]string{"api": s.digest(t, "api", "main-latest"), "web": s.digest(t, "web", "main-latest")}
	imagesBefore := map[string]string{}
	for _, name := range s.services {
		imagesBefore[name] = testenv.Inspect(t, s.c, name).Spec.TaskTemplate.ContainerSpec.Image
	}

	// The api image builds fine, the web one does not: nothing may move.
	broken := s.commit(t, "v2", map[string]string{"web/Dockerfile": "FROM scratch\nCOPY no-such-file /x\n"})
	id = s.push(t, broken)
	j, log := s.sh.WaitJob(id, 4*time.Minute)
	if j.Status != "failed" {
		t.Fatalf("broken build ended %s, want failed\n%s", j.Status, log)
	}
	if !strings.Contains(log, "no-such-file") || !strings.Contains(j.Error, "web") {
		t.Errorf("build error missing from log or error %q:\n%s", j.Error, testenv.TrimLines(log, 20))
	}
	for image, d := range latestBefore {
		if got := s.digest(t, image, "main-latest"); got != d {
			t.Errorf("%s main-latest moved from %s to %s", image, d, got)
		}
	}
	if tag := j.Images[0].Tag; tag != "" {
		if _, err := s.reg.Digest(context.Background(), s.ns+"/api", tag); err == nil {
			t.Errorf("api:%s was pushed by a failed job", tag)
		}
	}
	for name, img := range imagesBefore {
		if got := testenv.Inspect(t, s.c, name).Spec.TaskTemplate.ContainerSpec.Image; got != img {
			t.Errorf("%s changed to %s by a failed job", name, got)
		}
	}
}

func TestRejectedDeliveriesStartNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	commit := s.commit(t, "v1", nil)
	body := testenv.GitHubPushBody("main", strings.Repeat("0", 40), commit, "x")

	h := http.Header{"X-Github-Event": {"push"}, "X-Hub-Signature-256": {"sha256=" + strings.Repeat("ab", 32)}}
	if code, resp := s.sh.Do(http.MethodPost, "/hooks/shop", h, body); code != http.StatusUnauthorized {
		t.Errorf("bad signature: %d %s, want 401", code, resp)
	}
	bad := []byte(`{"ref": "refs/heads/main", "after": `)
	code, resp := s.sh.GitHubPush("shop", secret, bad)
	if code != http.StatusBadRequest || !strings.Contains(string(resp), "error") {
		t.Errorf("malformed JSON: %d %s, want 400 with a message", code, resp)
	}
	if code, resp := s.sh.GitHubPush("nope", secret, body); code != http.StatusNotFound {
		t.Errorf("unknown project: %d %s, want 404", code, resp)
	}
	// No job was created by any of them.
	if code, _ := s.sh.API(http.MethodGet, "/api/jobs/1", nil); code != http.StatusNotFound {
		t.Errorf("a job exists after rejected deliveries (GET /api/jobs/1 = %d)", code)
	}
	// And the services still run their first image.
	for _, name := range s.services {
		if img := testenv.Inspect(t, s.c, name).Spec.TaskTemplate.ContainerSpec.Image; !strings.Contains(img, ":init@") {
			t.Errorf("%s changed to %s", name, img)
		}
	}
}
