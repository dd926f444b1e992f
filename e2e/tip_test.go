package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/imageref"
	"github.com/swarmhook/swarmhook/internal/testenv"
	"github.com/swarmhook/swarmhook/registry"
)

// TestOnlyTheBranchTipBuilds: a re-sent push of an older commit of main
// builds main's tip, never the older commit, and says so; a push of a
// commit force-pushed away builds and deploys nothing and says why; a
// manual deploy builds the tip.
func TestOnlyTheBranchTipBuilds(t *testing.T) {
	t.Parallel()
	c := testenv.Require(t)
	ctx := context.Background()
	ns := testenv.Unique("tip")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	svc := ns + "-app"
	testenv.CreateService(t, c, svc, testenv.BuildAndPush(t, c, testenv.Registry()+"/"+ns+"/app:init", "app v0"), testenv.ServiceOptions{})
	repo := testenv.NewGitRepo(t)
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - name: tip
    repo: %s
    secret: %s
    images: [{name: %s/app}]
    deploy: [{branch: main, services: [%s], update: {monitor: 1s}, timeout: 2m}]
`, testenv.Registry(), repo.URL(), secret, ns, svc))
	reg := registry.New(registry.Credentials{Host: testenv.Registry()}, true)
	// deployed checks that main-latest and the service are on j's image,
	// built from commit.
	deployed := func(t *testing.T, j testenv.Job, commit string) {
		t.Helper()
		if d, err := reg.Digest(ctx, ns+"/app", "main-latest"); err != nil || d != j.Images[0].Digest {
			t.Errorf("main-latest at %s (%v), want %s", d, err, j.Images[0].Digest)
		}
		// By digest: a rebuild of the commit the service runs has the same
		// digest and leaves the service, and its tag, as they were.
		running := testenv.Inspect(t, c, svc).Spec.TaskTemplate.ContainerSpec.Image
		if imageref.Digest(running) != j.Images[0].Digest {
			t.Errorf("service runs %s, want digest %s", running, j.Images[0].Digest)
		}
		inspect, err := c.ImageInspect(ctx, running)
		if err != nil {
			t.Fatal(err)
		}
		if got := inspect.Config.Labels["org.opencontainers.image.revision"]; got != commit {
			t.Errorf("service runs commit %s, want %s", got, commit)
		}
	}
	build := func(t *testing.T, commit string) testenv.Job {
		t.Helper()
		j, log := pushAndWait(t, sh, "tip", commit)
		if j.Status != "succeeded" {
			t.Fatalf("job %s: %s\n%s", j.Status, j.Error, testenv.TrimLines(log, 40))
		}
		return j
	}
	a := repo.Commit("a", testenv.AppFiles(t, "app a"))
	build(t, a)
	b := repo.Commit("b", map[string]string{"version.txt": "app b"})
	deployed(t, build(t, b), b)

	t.Run("re-sent push of an older commit", func(t *testing.T) {
		j, log := pushAndWait(t, sh, "tip", a)
		if j.Status != "succeeded" || j.Commit != b {
			t.Fatalf("job %s at %s (%s), want succeeded at the tip %s\n%s", j.Status, j.Commit, j.Error, b, testenv.TrimLines(log, 40))
		}
		if want := fmt.Sprintf("refs/heads/main has moved on from %s to %s", a, b); !strings.Contains(log, want) {
			t.Errorf("job log lacks %q:\n%s", want, testenv.TrimLines(log, 40))
		}
		deployed(t, j, b)
	})

	t.Run("push of a commit force-pushed away", func(t *testing.T) {
		gone := repo.Commit("c", map[string]string{"version.txt": "app c"})
		jc := build(t, gone)
		repo.Git("reset", "-q", "--hard", b)
		j, log := pushAndWait(t, sh, "tip", gone)
		want := fmt.Sprintf("%s is not on refs/heads/main (now at %s): force-pushed away?", gone, b)
		if j.Status != "failed" || !strings.Contains(j.Error, want) {
			t.Fatalf("job %s: %q, want failed with %q\n%s", j.Status, j.Error, want, testenv.TrimLines(log, 40))
		}
		if len(j.Images) != 0 || len(j.Services) != 0 {
			t.Errorf("refused job built or deployed: %+v", j)
		}
		deployed(t, jc, gone)
	})

	t.Run("manual deploy builds the tip", func(t *testing.T) {
		code, body := sh.API(http.MethodPost, "/api/projects/tip/deploy", []byte(`{"branch":"main"}`))
		var resp struct{ Job int64 }
		if code != http.StatusAccepted || json.Unmarshal(body, &resp) != nil {
			t.Fatalf("deploy answered %d %s", code, body)
		}
		j, log := sh.WaitJob(resp.Job, 4*time.Minute)
		if j.Status != "succeeded" || j.Commit != b {
			t.Fatalf("job %s at %s: %s, want succeeded at %s\n%s", j.Status, j.Commit, j.Error, b, testenv.TrimLines(log, 40))
		}
		deployed(t, j, b)
	})
}
