package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

// TestRebuildOfUnchangedCommitRestartsNothing pushes one commit, then
// the same commit again (a new delivery, as a re-run would send): the
// second job builds the same digest, deploys it as unchanged and Swarm
// restarts nothing (the service's version, UpdatedAt and task IDs stay).
// The image's created label is the commit's time and no label names the
// job. Both builders, and BuildKit with no_cache: a build from nothing
// has the same digest too (same file times; the config's times restamped
// at push).
func TestRebuildOfUnchangedCommitRestartsNothing(t *testing.T) {
	for _, tt := range []struct {
		kind    string
		noCache bool
	}{{"buildkit", false}, {"classic", false}, {"buildkit", true}} {
		t.Run(fmt.Sprintf("%s no_cache %v", tt.kind, tt.noCache), func(t *testing.T) { rebuildUnchanged(t, tt.kind, tt.noCache) })
	}
}

func rebuildUnchanged(t *testing.T, kind string, noCache bool) {
	c := testenv.Require(t)
	ctx := context.Background()
	ns := testenv.Unique("repro")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	svc := ns + "-web"
	initial := testenv.BuildAndPushDockerfile(t, c, fmt.Sprintf("%s/%s/app:init", testenv.Registry(), ns), "v0", testenv.HealthyDockerfile)
	testenv.CreateService(t, c, svc, initial, testenv.ServiceOptions{Replicas: 2})
	repo := testenv.NewGitRepo(t)
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
docker: {builder: %s}
projects:
  - name: repro
    repo: %s
    secret: %s
    images: [{name: %s/app, no_cache: %v}]
    deploy: [{branch: main, services: [%s], update: {monitor: 1s}, timeout: 2m}]
`, testenv.Registry(), kind, repo.URL(), secret, ns, noCache, svc))

	first, log := sh.PushApp(repo, "repro", secret, "main", "v1 "+ns, false)
	if first.Status != "succeeded" || len(first.Services) != 1 || first.Services[0].Outcome != "updated" {
		t.Fatalf("first job: %s %s %+v\n%s", first.Status, first.Error, first.Services, log)
	}
	before := testenv.Inspect(t, c, svc)
	tasks := func() []string {
		ts, err := c.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc))})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, tk := range ts {
			ids = append(ids, tk.ID+" "+string(tk.Status.State))
		}
		slices.Sort(ids)
		return ids
	}
	tasksBefore := tasks()

	code, body := sh.GitHubPush("repro", secret, testenv.GitHubPushBody("main", strings.Repeat("1", 40), first.Commit, "again"))
	var a struct{ Job int64 }
	if code != http.StatusAccepted || json.Unmarshal(body, &a) != nil || a.Job == 0 || a.Job == first.ID {
		t.Fatalf("second push: %d %s, want a new job", code, body)
	}
	second, log := sh.WaitJob(a.Job, 4*time.Minute)
	if second.Status != "succeeded" {
		t.Fatalf("second job %s: %s\n%s", second.Status, second.Error, log)
	}
	if second.Images[0].Digest != first.Images[0].Digest {
		t.Errorf("the same commit built %s, then %s", first.Images[0].Digest, second.Images[0].Digest)
	}
	if len(second.Services) != 1 || second.Services[0].Outcome != "unchanged" {
		t.Errorf("second job's services: %+v, want %s unchanged", second.Services, svc)
	}
	after := testenv.Inspect(t, c, svc)
	if after.Version.Index != before.Version.Index || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("service was changed: version %d -> %d, updated %s -> %s", before.Version.Index, after.Version.Index, before.UpdatedAt, after.UpdatedAt)
	}
	if got := tasks(); !slices.Equal(got, tasksBefore) {
		t.Errorf("tasks changed:\n before %v\n after  %v", tasksBefore, got)
	}

	inspect, _, err := c.ImageInspectWithRaw(ctx, first.Images[0].Ref)
	if err != nil {
		t.Fatal(err)
	}
	commitTime := strings.TrimSpace(repo.Git("show", "-s", "--format=%cI", first.Commit))
	want, _ := time.Parse(time.RFC3339, commitTime)
	if got := inspect.Config.Labels["org.opencontainers.image.created"]; got != want.UTC().Format(time.RFC3339) {
		t.Errorf("created label %q, want the commit's time %s", got, want.UTC().Format(time.RFC3339))
	}
	for k := range inspect.Config.Labels {
		if strings.Contains(k, "job") {
			t.Errorf("image carries label %s: the job belongs in swarmhook's record", k)
		}
	}
}
