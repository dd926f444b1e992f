package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/internal/testenv"
	"github.com/swarmhook/swarmhook/registry"
)

// TestReleaseImageRunsAsSwarmService builds the repository's Dockerfile
// final stage from a locally compiled binary (no base image can be
// pulled here), runs swarmhook itself as a Swarm service with the Docker
// socket mounted and host networking, and drives one deploy through it.
func TestReleaseImageRunsAsSwarmService(t *testing.T) {
	t.Parallel()
	c := testenv.Require(t)
	ctx := context.Background()
	ns := testenv.Unique("img")
	testenv.RemoveImagesOnCleanup(t, c, ns)

	// The build context: the real Dockerfile, the static binary, CA bundle.
	buildDir := t.TempDir()
	dockerfile, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(testenv.GoBinary(t, "./cmd/swarmhook"))
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	for name, body := range map[string][]byte{"Dockerfile": dockerfile, "swarmhook": bin, "ca-certificates.crt": ca} {
		if err := os.WriteFile(filepath.Join(buildDir, name), body, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ref := fmt.Sprintf("%s/%s/swarmhook:test", testenv.Registry(), ns)
	buildWithBuildKit(t, c, buildDir, ref)
	e := builder.NewEngine(c, registry.Credentials{}.EngineAuth(), builder.Classic)
	digest, err := e.Push(ctx, ref, io.Discard)
	if err != nil {
		t.Fatal(err)
	}

	// The app it will deploy, served over Git's HTTP protocol: the
	// release image has no git binary, so no file:// URLs.
	repo := testenv.NewGitRepo(t)
	gitURL := testenv.ServeGit(t, repo, "", "")
	appSvc := ns + "-app"
	initial := testenv.BuildAndPush(t, c, fmt.Sprintf("%s/%s/app:init", testenv.Registry(), ns), "app v0")
	testenv.CreateService(t, c, appSvc, initial, testenv.ServiceOptions{})

	port := testenv.FreePort(t)
	cfgDir, dataDir := t.TempDir(), t.TempDir()
	cfg := fmt.Sprintf(`listen: 127.0.0.1:%d
data_dir: /var/lib/swarmhook
tokens: [{name: tester, token: %s, scopes: [admin]}]
registry: {host: %q, insecure: true}
projects:
  - name: app
    repo: %s
    secret: %s
    images: [{name: %s/app}]
    deploy: [{branch: main, services: [%s], update: {monitor: 1s}}]
`, port, testenv.AdminToken, testenv.Registry(), gitURL, secret, ns, appSvc)
	if err := os.WriteFile(filepath.Join(cfgDir, "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	one := uint64(1)
	resp, err := c.ServiceCreate(ctx, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: ns + "-swarmhook"},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image: ref + "@" + digest,
				Mounts: []mount.Mount{
					{Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"},
					{Type: mount.TypeBind, Source: cfgDir, Target: "/etc/swarmhook", ReadOnly: true},
					{Type: mount.TypeBind, Source: dataDir, Target: "/var/lib/swarmhook"},
				},
			},
			Networks:  []swarm.NetworkAttachmentConfig{{Target: "host"}},
			Placement: &swarm.Placement{Constraints: []string{testenv.ManagerOnly}},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
	}, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.ServiceRemove(context.Background(), resp.ID) })
	sh := &testenv.Swarmhook{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Token: testenv.AdminToken}
	sh.SetT(t)
	testenv.Eventually(t, 90*time.Second, 250*time.Millisecond, func() (bool, string) {
		body, err := testenv.Get(sh.URL + "/healthz")
		return err == nil && strings.Contains(body, "ok"), fmt.Sprintf("healthz: %q %v", body, err)
	})

	commit := repo.Commit("v1", testenv.AppFiles(t, "app v1"))
	code, body := sh.GitHubPush("app", secret, testenv.GitHubPushBody("main", strings.Repeat("0", 39)+"1", commit, "v1"))
	if code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	var a struct{ Job int64 }
	json.Unmarshal(body, &a)
	j, log := sh.WaitJob(a.Job, 3*time.Minute)
	if j.Status != "succeeded" {
		t.Fatalf("job in the container: %s %s\n%s", j.Status, j.Error, testenv.TrimLines(log, 30))
	}
	if got := testenv.Inspect(t, c, appSvc).Spec.TaskTemplate.ContainerSpec.Image; got != j.Images[0].Ref {
		t.Errorf("app runs %s, want %s", got, j.Images[0].Ref)
	}
}

// buildWithBuildKit builds dir's Dockerfile with BINARY=prebuilt through
// the Engine API's BuildKit builder, which skips the unused source stage.
func buildWithBuildKit(t *testing.T, c *client.Client, dir, ref string) {
	t.Helper()
	tar, err := builder.ContextTar(context.Background(), dir, dir, "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer tar.Close()
	prebuilt := "prebuilt"
	resp, err := c.ImageBuild(context.Background(), tar, build.ImageBuildOptions{
		Tags: []string{ref}, Version: build.BuilderBuildKit, BuildArgs: map[string]*string{"BINARY": &prebuilt}, Remove: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m struct {
			ErrorDetail *struct{ Message string } `json:"errorDetail"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if m.ErrorDetail != nil {
			t.Fatalf("build release image: %s", m.ErrorDetail.Message)
		}
	}
	if _, _, err := c.ImageInspectWithRaw(context.Background(), ref); err != nil {
		t.Fatalf("release image not built: %v", err)
	}
}
