package e2e

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/swarmhook/swarmhook/internal/testenv"
	"github.com/swarmhook/swarmhook/registry"
)

// TestBuildKitColdEngineReusesTheRegistrysLayers builds a branch with
// BuildKit on a worker's engine, then its next commit on the manager's,
// which never built it: the second build takes the first's RUN step from
// the registry's main-latest (the inline cache in its config, read
// through cache-from) instead of running it again. The RUN writes random
// bytes, so both images have its layer only if it was reused.
//
// The cold engine is the manager's because Docker 20.10's BuildKit
// reaches a plain-HTTP registry only on localhost or when
// insecure-registries names it with http:// (the nodes trust a CIDR,
// which it ignores); both swarmhooks name the same registry storage, one
// as the nodes reach it, one on localhost.
func TestBuildKitColdEngineReusesTheRegistrysLayers(t *testing.T) {
	t.Parallel()
	c := testenv.RequireNodes(t)
	worker := testenv.Workers()[0]
	wc := worker.Client(t)
	ns := testenv.Unique("coldbk")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	testenv.RemoveImagesOnCleanup(t, wc, ns)

	// The base image goes to the worker by a classic pull, which honours
	// the CIDR; BuildKit then finds it there.
	base := testenv.NodeRegistry + "/" + ns + "/base:1"
	pushImage(t, c, "swarmhook-test/busybox:latest", base, registry.Credentials{}.EngineAuth())
	pullImage(t, wc, base)

	repo := testenv.NewGitRepo(t)
	dockerfile := "FROM " + base + "\nRUN echo " + ns + " > /ns && head -c 32 /dev/urandom | od -x > /random\nCOPY version.txt /version.txt\n"
	commit1 := repo.Commit("v1", map[string]string{"Dockerfile": dockerfile, "version.txt": "v1"})
	config := func(reg, engine, host string) string {
		return fmt.Sprintf(`
registry: {host: %q, insecure: true}
docker:
  builder: buildkit
  builders: [{name: %s, host: %q}]
projects:
  - name: %s
    repo: %s
    secret: %s
    images: [{name: %s/app}]
`, reg, engine, host, ns, repo.URL(), secret, ns)
	}

	sh := testenv.StartSwarmhook(t, config(testenv.NodeRegistry, worker.Name, worker.Host))
	j1, log1 := pushAndWait(t, sh, ns, commit1)
	if j1.Status != "succeeded" || j1.Engine != worker.Name {
		t.Fatalf("first job %s on %q: %s\n%s", j1.Status, j1.Engine, j1.Error, log1)
	}
	sh.Stop()

	// The next commit changes only what comes after the RUN.
	commit2 := repo.Commit("v2", map[string]string{"version.txt": "v2"})
	sh = testenv.StartSwarmhook(t, config(testenv.Registry(), "manager", c.DaemonHost()))
	j2, log2 := pushAndWait(t, sh, ns, commit2)
	if j2.Status != "succeeded" || j2.Engine != "manager" {
		t.Fatalf("second job %s on %q: %s\n%s", j2.Status, j2.Engine, j2.Error, log2)
	}
	latest := fmt.Sprintf("%s/%s/app:main-latest", testenv.Registry(), ns)
	run := regexp.MustCompile(`(?m)^(#\d+) \[\d/\d\] RUN echo ` + ns)
	m := run.FindStringSubmatch(log2)
	if m == nil || !strings.Contains(log2, m[1]+" CACHED\n") || !strings.Contains(log2, "importing cache manifest from "+latest) {
		t.Errorf("the second build ran the RUN step again rather than take it from %s:\n%s", latest, log2)
	}

	layers1 := diffIDs(t, wc, fmt.Sprintf("%s/%s/app:%s", testenv.NodeRegistry, ns, j1.Images[0].Tag))
	layers2 := diffIDs(t, c, fmt.Sprintf("%s/%s/app:%s", testenv.Registry(), ns, j2.Images[0].Tag))
	if len(layers1) != len(layers2) || len(layers1) < 3 {
		t.Fatalf("layers %v, then %v: want base, RUN and COPY in both", layers1, layers2)
	}
	n := len(layers1)
	if !slices.Equal(layers1[:n-1], layers2[:n-1]) {
		t.Errorf("the RUN step's layer differs: it ran again on the cold engine\n first  %v\n second %v", layers1, layers2)
	}
	if layers1[n-1] == layers2[n-1] {
		t.Errorf("the version layer is the same in both builds: the second built nothing new")
	}
}

// TestBuildKitReadsTheRegistryWithItsCredentials builds with BuildKit
// from a registry that wants a password: the engine pulls the base image
// and reads the branch's main-latest as cache with the credentials the
// build's session gives it, and the password shows nowhere.
func TestBuildKitReadsTheRegistryWithItsCredentials(t *testing.T) {
	c := testenv.Require(t)
	ctx := context.Background()
	ns := testenv.Unique("bkauth")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	const password = "bk-cache-pa55-5e0c1a"
	creds := registry.Credentials{Host: testenv.StartAuthRegistry(t, "builder", password), Username: "builder", Password: password}
	t.Setenv("E2E_BK_REG_PASSWORD", password)

	// The engine must pull the base: it keeps the image, not the name.
	base := creds.Host + "/" + ns + "/base:1"
	pushImage(t, c, "swarmhook-test/busybox:latest", base, creds.EngineAuth())
	if _, err := c.ImageRemove(ctx, base, image.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}

	repo := testenv.NewGitRepo(t)
	dockerfile := "FROM " + base + "\nRUN echo " + ns + " > /ns\nCOPY version.txt /version.txt\n"
	commit1 := repo.Commit("v1", map[string]string{"Dockerfile": dockerfile, "version.txt": "v1"})
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true, username: builder, password: "${E2E_BK_REG_PASSWORD}"}
docker:
  builder: buildkit
  builders: [{name: manager, host: %q}]
projects:
  - name: %s
    repo: %s
    secret: %s
    images: [{name: %s/app}]
`, creds.Host, c.DaemonHost(), ns, repo.URL(), secret, ns))
	j1, log1 := pushAndWait(t, sh, ns, commit1)
	if j1.Status != "succeeded" {
		t.Fatalf("first job %s: %s\n%s", j1.Status, j1.Error, log1)
	}

	commit2 := repo.Commit("v2", map[string]string{"version.txt": "v2"})
	j2, log2 := pushAndWait(t, sh, ns, commit2)
	if j2.Status != "succeeded" {
		t.Fatalf("second job %s: %s\n%s", j2.Status, j2.Error, log2)
	}
	latest := fmt.Sprintf("%s/%s/app:main-latest", creds.Host, ns)
	imp := regexp.MustCompile(`(?m)^(#\d+) importing cache manifest from ` + regexp.QuoteMeta(latest) + `$`)
	m := imp.FindStringSubmatch(log2)
	if m == nil || strings.Contains(log2, m[1]+" ERROR") {
		t.Errorf("the second build did not read %s:\n%s", latest, log2)
	}
	if strings.Contains(log1+log2, password) || strings.Contains(sh.Output(), password) {
		t.Error("the registry password shows in a job log or swarmhook's output")
	}
}

// pushImage tags src on c as ref and pushes it with the X-Registry-Auth
// value auth.
func pushImage(t *testing.T, c *client.Client, src, ref, auth string) {
	t.Helper()
	ctx := context.Background()
	if err := c.ImageTag(ctx, src, ref); err != nil {
		t.Fatal(err)
	}
	rc, err := c.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: auth})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// pullImage pulls ref onto the engine c.
func pullImage(t *testing.T, c *client.Client, ref string) {
	t.Helper()
	rc, err := c.ImagePull(context.Background(), ref, image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil); err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
}

// diffIDs lists the layers of ref as the engine c holds it.
func diffIDs(t *testing.T, c *client.Client, ref string) []string {
	t.Helper()
	img, err := c.ImageInspect(context.Background(), ref)
	if err != nil {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	return img.RootFS.Layers
}
