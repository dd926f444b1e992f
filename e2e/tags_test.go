package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/docker/docker/client"

	"github.com/swarmhook/swarmhook/internal/testenv"
	"github.com/swarmhook/swarmhook/registry"
	"github.com/swarmhook/swarmhook/tagpolicy"
)

// tagStack: one image and one service, a, that main deploys with Swarm's
// failure action rollback. Every other branch only builds and pushes.
type tagStack struct {
	c    *client.Client
	ns   string
	repo *testenv.GitRepo
	sh   *testenv.Swarmhook
	reg  *registry.Client
	svc  string
}

func newTagStack(t *testing.T) *tagStack {
	c := testenv.Require(t)
	ns := testenv.Unique("tags")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	s := &tagStack{c: c, ns: ns, repo: testenv.NewGitRepo(t), svc: ns + "-a",
		reg: registry.New(registry.Credentials{Host: testenv.Registry()}, true)}
	initial := testenv.BuildAndPushDockerfile(t, c, fmt.Sprintf("%s/%s/app:init", testenv.Registry(), ns), "good v0", testenv.HealthyDockerfile)
	testenv.CreateService(t, c, s.svc, initial, testenv.ServiceOptions{})
	s.sh = testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - name: tags
    repo: %s
    secret: %s
    images: [{name: %s/app}]
    deploy:
      - branch: main
        services: [%s]
        update: {parallelism: 1, monitor: 3s, failure_action: rollback}
        timeout: 2m
`, testenv.Registry(), s.repo.URL(), secret, ns, s.svc))
	return s
}

// push commits version on branch (a healthy app unless broken), pushes it
// and waits for the job.
func (s *tagStack) push(t *testing.T, branch, version string, broken bool) testenv.Job {
	t.Helper()
	j, log := s.sh.PushApp(s.repo, "tags", secret, branch, version, broken)
	if len(j.Images) != 1 {
		t.Fatalf("push to %s: job %s with images %+v\n%s", branch, j.Status, j.Images, testenv.TrimLines(log, 30))
	}
	return j
}

func (s *tagStack) digest(t *testing.T, tag string) string {
	t.Helper()
	d, err := s.reg.Digest(context.Background(), s.ns+"/app", tag)
	if err != nil {
		t.Fatalf("digest of app:%s: %v", tag, err)
	}
	return d
}

// mainTags are the registry's tags that read as main's.
func (s *tagStack) mainTags(t *testing.T) []string {
	t.Helper()
	tags, err := s.reg.Tags(context.Background(), s.ns+"/app")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tag := range tags {
		if c, _, ok := tagpolicy.ParseTimestamped(tag); ok && c == "main" || tag == "main-latest" {
			out = append(out, tag)
		}
	}
	slices.Sort(out)
	return out
}

type offeredTag struct {
	Tag, Status, Branch string
	Job                 int64
}

// offered is GET /api/services/{a}/tags.
func (s *tagStack) offered(t *testing.T) []offeredTag {
	t.Helper()
	code, body := s.sh.API(http.MethodGet, "/api/services/"+s.svc+"/tags", nil)
	var got struct{ Tags []offeredTag }
	if err := json.Unmarshal(body, &got); code != http.StatusOK || err != nil {
		t.Fatalf("GET tags: %d %s (%v)", code, body, err)
	}
	return got.Tags
}

func (s *tagStack) running(t *testing.T) string {
	return testenv.Inspect(t, s.c, s.svc).Spec.TaskTemplate.ContainerSpec.Image
}

// TestBranchesNeverShareTags: pushes to Main, to a branch named like one
// of main's tags, and to feature/x beside feature-x each get tags of
// their own. None moves main-latest, adds a tag that reads as main's, or
// is offered as a rollback target of the service main deploys.
func TestBranchesNeverShareTags(t *testing.T) {
	t.Parallel()
	s := newTagStack(t)
	v1 := s.push(t, "main", "good v1", false)
	if v1.Status != "succeeded" {
		t.Fatalf("main v1: %s %s", v1.Status, v1.Error)
	}
	latest := s.digest(t, "main-latest")
	if latest != v1.Images[0].Digest {
		t.Fatalf("main-latest at %s, want v1's %s", latest, v1.Images[0].Digest)
	}
	mainTags := s.mainTags(t)

	others := map[string]testenv.Job{}
	for _, branch := range []string{"Main", "main-" + v1.Images[0].Tag[len("main-"):], "feature/x", "feature-x"} {
		j := s.push(t, branch, "good "+branch, false)
		if j.Status != "succeeded" {
			t.Fatalf("push to %s: %s %s", branch, j.Status, j.Error)
		}
		others[branch] = j
		if got := s.digest(t, "main-latest"); got != latest {
			t.Errorf("push to %s moved main-latest from %s to %s", branch, latest, got)
		}
		if got := s.mainTags(t); !slices.Equal(got, mainTags) {
			t.Errorf("push to %s changed main's tags from %v to %v", branch, mainTags, got)
		}
		if got := s.running(t); got != v1.Images[0].Ref {
			t.Errorf("push to %s deployed %s", branch, got)
		}
	}

	// Each branch has its own tags, and its -latest names its own build.
	seen := map[string]string{}
	for branch, j := range others {
		im := j.Images[0]
		comp, _, ok := tagpolicy.ParseTimestamped(im.Tag)
		if !ok || im.LatestTag != tagpolicy.Latest(comp) {
			t.Errorf("%s: tags %q, %q", branch, im.Tag, im.LatestTag)
		}
		if other, dup := seen[comp]; dup {
			t.Errorf("%s and %s share the tag component %q", branch, other, comp)
		}
		seen[comp] = branch
		if got := s.digest(t, im.LatestTag); got != im.Digest {
			t.Errorf("%s: %s at %s, want its build %s", branch, im.LatestTag, got, im.Digest)
		}
	}
	if others["feature-x"].Images[0].LatestTag != "feature-x-latest" {
		t.Errorf("feature-x, a readable name, is tagged %s", others["feature-x"].Images[0].LatestTag)
	}

	// main's service is offered main's build only.
	want := []offeredTag{{Tag: v1.Images[0].Tag, Status: "succeeded", Branch: "main", Job: v1.ID}}
	if got := s.offered(t); !slices.Equal(got, want) {
		t.Errorf("rollback candidates of %s: %+v, want %+v", s.svc, got, want)
	}
}

// TestRolledBackDeployLeavesLatest: when Swarm rolls a deploy back,
// main-latest stays on the build the service runs, and the failed build
// is offered marked as such.
func TestRolledBackDeployLeavesLatest(t *testing.T) {
	t.Parallel()
	s := newTagStack(t)
	v1 := s.push(t, "main", "good v1", false)
	if v1.Status != "succeeded" {
		t.Fatalf("main v1: %s %s", v1.Status, v1.Error)
	}
	v2 := s.push(t, "main", "good v2 but unhealthy", true)
	if v2.Status != "failed" || len(v2.Services) != 1 || v2.Services[0].Outcome != "rolled_back" {
		t.Fatalf("v2: %s, services %+v", v2.Status, v2.Services)
	}
	if got := s.running(t); got != v1.Images[0].Ref {
		t.Fatalf("%s runs %s after Swarm's rollback, want v1 %s", s.svc, got, v1.Images[0].Ref)
	}
	if got := s.digest(t, v2.Images[0].Tag); got != v2.Images[0].Digest {
		t.Fatalf("v2's tag at %s, want its push %s", got, v2.Images[0].Digest)
	}
	if got := s.digest(t, "main-latest"); got != v1.Images[0].Digest {
		t.Errorf("main-latest at %s after a rolled-back deploy, want v1's %s that runs (v2 is %s)", got, v1.Images[0].Digest, v2.Images[0].Digest)
	}
	want := []offeredTag{
		{Tag: v2.Images[0].Tag, Status: "rolled_back", Branch: "main", Job: v2.ID},
		{Tag: v1.Images[0].Tag, Status: "succeeded", Branch: "main", Job: v1.ID},
	}
	if got := s.offered(t); !slices.Equal(got, want) {
		t.Errorf("rollback candidates: %+v, want %+v", got, want)
	}

	// The next good build moves it.
	v3 := s.push(t, "main", "good v3", false)
	if v3.Status != "succeeded" {
		t.Fatalf("v3: %s %s", v3.Status, v3.Error)
	}
	if got := s.digest(t, "main-latest"); got != v3.Images[0].Digest {
		t.Errorf("main-latest at %s, want v3's %s", got, v3.Images[0].Digest)
	}
}
