package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/client"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

// TestBuildMovesToAnotherEngineWhenItsEngineDies lists two build
// engines: a dockerd the test starts (a), preferred, and a worker node's
// engine (b). With a killed by its PID, the job's build fails on a, a is
// marked down, and the build runs again on b, which pushes the image to
// the registry; the job log says so and /readyz shows a down. With its
// copy gone, b then builds the branch again from the registry's layers.
// The classic builder, which pulls the cache first (the nodes' BuildKit
// cannot read their plain-HTTP registry: see
// TestBuildKitColdEngineReusesTheRegistrysLayers for BuildKit).
func TestBuildMovesToAnotherEngineWhenItsEngineDies(t *testing.T) {
	c := testenv.Require(t)
	bHost := testenv.RequireWorkerEngine(t)
	a := testenv.StartEngine(t)
	ns := testenv.Unique("engines")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	bc, err := client.NewClientWithOpts(client.WithHost(bHost), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	testenv.RemoveImagesOnCleanup(t, bc, ns)

	repo := testenv.NewGitRepo(t)
	commit := repo.Commit("v1", testenv.AppFiles(t, "v1"))
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
docker:
  builder: classic
  builders:
    - {name: a, host: %q, weight: 2, labels: {pool: e2e}}
    - {name: b, host: %q, labels: {pool: e2e}}
projects:
  - name: %s
    repo: %s
    secret: %s
    build: {on: {pool: e2e}}
    images: [{name: %s/app}]
`, testenv.WorkerRegistry, a.Host, bHost, ns, repo.URL(), secret, ns))

	a.Kill(t)
	j, log := pushAndWait(t, sh, ns, commit)
	if j.Status != "succeeded" {
		t.Fatalf("job %s: %s\n%s", j.Status, j.Error, log)
	}
	if j.Engine != "b" {
		t.Errorf("job.engine = %q, want b", j.Engine)
	}
	for _, want := range []string{"building on engine a", "engine a stopped answering during the build", "building again on another engine", "building on engine b", "no build cache from"} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q:\n%s", want, log)
		}
	}
	// The image went to the registry from b, the engine that built it.
	ref := fmt.Sprintf("%s/%s/app:%s", testenv.WorkerRegistry, ns, j.Images[0].Tag)
	if _, err := bc.ImageInspect(context.Background(), ref); err != nil {
		t.Errorf("engine b does not hold %s: %v", ref, err)
	}
	if _, err := c.ImageInspect(context.Background(), ref); err == nil {
		t.Errorf("the manager's engine holds %s: builds should stay off it", ref)
	}

	code, body := sh.Do(http.MethodGet, "/readyz", nil, nil)
	type engineState struct {
		Name  string
		Up    bool
		Error string
	}
	var ready struct{ Engines []engineState }
	if err := json.Unmarshal(body, &ready); err != nil {
		t.Fatalf("/readyz %d %s: %v", code, body, err)
	}
	if code != http.StatusOK {
		t.Errorf("/readyz %d with b up: %s", code, body)
	}
	down := slices.IndexFunc(ready.Engines, func(e engineState) bool { return e.Name == "a" && !e.Up && e.Error != "" })
	up := slices.IndexFunc(ready.Engines, func(e engineState) bool { return e.Name == "b" && e.Up })
	if down < 0 || up < 0 {
		t.Errorf("/readyz engines = %+v, want a down with its error and b up", ready.Engines)
	}
	_, metrics := sh.Do(http.MethodGet, "/metrics", nil, nil)
	for _, want := range []string{`swarmhook_build_engine_up{engine="a"} 0`, `swarmhook_build_engine_up{engine="b"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A cold engine reuses the layers in the registry: with b's images of
	// the project gone, the next build takes them from main-latest.
	testenv.RemoveImages(bc, ns)
	j2, log2 := pushAndWait(t, sh, ns, commit)
	if j2.Status != "succeeded" || j2.Engine != "b" {
		t.Fatalf("second job %s on %q: %s\n%s", j2.Status, j2.Engine, j2.Error, log2)
	}
	latest := fmt.Sprintf("%s/%s/app:main-latest", testenv.WorkerRegistry, ns)
	for _, want := range []string{"build cache from " + latest, "Using cache"} {
		if !strings.Contains(log2, want) {
			t.Errorf("second job's log lacks %q:\n%s", want, log2)
		}
	}
}
