package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/errdefs"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/internal/testenv"
	"github.com/swarmhook/swarmhook/registry"
)

// pushAndWait delivers a signed push of commit to project's main branch
// and waits for the job it starts.
func pushAndWait(t *testing.T, sh *testenv.Swarmhook, project, commit string) (testenv.Job, string) {
	t.Helper()
	code, body := sh.GitHubPush(project, secret, testenv.GitHubPushBody("main", strings.Repeat("0", 39)+"1", commit, "release"))
	if code != http.StatusAccepted {
		t.Fatalf("push answered %d %s, want 202", code, body)
	}
	var a struct{ Job int64 }
	if err := json.Unmarshal(body, &a); err != nil || a.Job == 0 {
		t.Fatalf("push answer %s: %v", body, err)
	}
	return sh.WaitJob(a.Job, 4*time.Minute)
}

// stagedDockerfile has a stage that cannot build, so only target: app
// succeeds; its label shows the build arg's placeholders were filled in.
const stagedDockerfile = `FROM scratch AS app
ARG VERSION
LABEL version=$VERSION
COPY app /app
COPY version.txt /version.txt
ENTRYPOINT ["/app"]

FROM scratch AS broken
COPY does-not-exist /x
`

// TestPrivateRepoToAuthRegistry fetches from a Git server that wants a
// token and pushes to a registry that wants a password, and neither
// secret shows anywhere. Build options reach the image, and the engine
// keeps only docker.keep_images of the builds.
func TestPrivateRepoToAuthRegistry(t *testing.T) {
	c := testenv.Require(t)
	ctx := context.Background()
	ns := testenv.Unique("priv")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	const gitToken, regPassword = "git-token-7c1d9e0a5b", "reg-pa55word-93ab1f"
	regHost := testenv.StartAuthRegistry(t, "pusher", regPassword)
	repo := testenv.NewGitRepo(t)
	gitURL := testenv.ServeGit(t, repo, "deployer", gitToken)
	t.Setenv("E2E_GIT_TOKEN", gitToken)
	t.Setenv("E2E_REG_PASSWORD", regPassword)

	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
docker: {keep_images: 1}
registry: {host: %q, insecure: true, username: pusher, password: "${E2E_REG_PASSWORD}"}
projects:
  - name: priv
    repo: %s
    secret: %s
    git: {username: deployer, token: "${E2E_GIT_TOKEN}"}
    images:
      - name: %s/app
        target: app
        build_args: {VERSION: "{{branch}}-{{short_commit}}"}
        labels: {com.example.team: qa}
`, regHost, gitURL, secret, ns))

	files := testenv.AppFiles(t, "private v1")
	files["Dockerfile"] = stagedDockerfile
	first := repo.Commit("v1", files)
	j1, log1 := pushAndWait(t, sh, "priv", first)
	if j1.Status != "succeeded" {
		t.Fatalf("first job %s: %s\n%s", j1.Status, j1.Error, testenv.TrimLines(log1, 40))
	}

	// Both tags are in the password-protected registry, on the recorded
	// digest; without the password the registry says no.
	reg := registry.New(registry.Credentials{Host: regHost, Username: "pusher", Password: regPassword}, true)
	im := j1.Images[0]
	for _, tag := range []string{im.Tag, im.LatestTag} {
		d, err := reg.Digest(ctx, ns+"/app", tag)
		if err != nil || d != im.Digest {
			t.Errorf("%s: digest %s, %v; job recorded %s", tag, d, err, im.Digest)
		}
	}
	if _, err := registry.New(registry.Credentials{Host: regHost}, true).Digest(ctx, ns+"/app", im.Tag); err == nil {
		t.Error("the registry answered without credentials: the test proves nothing")
	}

	// Build options and the OCI labels reach the image.
	ref1 := regHost + "/" + ns + "/app:" + im.Tag
	inspect, err := c.ImageInspect(ctx, ref1)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"version": "main-" + first[:12], "com.example.team": "qa",
		"org.opencontainers.image.revision": first, "org.opencontainers.image.source": gitURL,
		"io.swarmhook.project": "priv",
	} {
		if got := inspect.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if _, err := time.Parse(time.RFC3339, inspect.Config.Labels["org.opencontainers.image.created"]); err != nil {
		t.Errorf("created label: %v", err)
	}

	// A second push fetches into the mirror and supersedes the first
	// build, which keep_images: 1 removes from the engine.
	second := repo.Commit("v2", map[string]string{"version.txt": "private v2"})
	j2, log2 := pushAndWait(t, sh, "priv", second)
	if j2.Status != "succeeded" {
		t.Fatalf("second job %s: %s\n%s", j2.Status, j2.Error, testenv.TrimLines(log2, 40))
	}
	if !strings.Contains(log2, "fetching refs/heads/main") || !strings.Contains(log2, "removed superseded image "+ref1) {
		t.Errorf("second job log lacks the fetch or the prune:\n%s", log2)
	}
	if _, err := c.ImageInspect(ctx, ref1); !errdefs.IsNotFound(err) {
		t.Errorf("first build still on the engine: %v", err)
	}
	if _, err := c.ImageInspect(ctx, regHost+"/"+ns+"/app:"+j2.Images[0].Tag); err != nil {
		t.Errorf("current build gone from the engine: %v", err)
	}

	for _, secretText := range []string{gitToken, regPassword} {
		for what, text := range map[string]string{"job log 1": log1, "job log 2": log2, "swarmhook output": sh.Output()} {
			if strings.Contains(text, secretText) {
				t.Errorf("%s shows a secret", what)
			}
		}
	}
}

// TestDockerignoreMatchesDockerBuild builds one context twice, with
// `docker build` (the classic builder, which is sent a tar made by the
// CLI) and with swarmhook's builder, classic and BuildKit, and compares
// the files that arrived.
func TestDockerignoreMatchesDockerBuild(t *testing.T) {
	c := testenv.Require(t)
	ns := testenv.Unique("ignore")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	dir := t.TempDir()
	files := map[string]string{
		"Dockerfile": "FROM swarmhook-test/busybox:latest\nCOPY . /ctx\n",
		".dockerignore": `# comments and blank lines are skipped

*.log
!keep.log
**/node_modules
docs/**/*.md
!docs/api/README.md
/secrets
build/
!build/dist/
tmp?
  spaced.txt  
.git
Dockerfile
`,
		"main.go": "", "debug.log": "", "keep.log": "", "sub/trace.log": "", "sub/keep.log": "",
		"node_modules/a/index.js": "", "web/node_modules/b/index.js": "", "web/app.js": "",
		"docs/guide.md": "", "docs/api/README.md": "", "docs/api/v1/ref.md": "", "docs/logo.png": "",
		"secrets/key": "", "sub/secrets/key": "", "build/obj.o": "", "build/dist/app": "",
		"tmp1": "", "tmp12": "", "spaced.txt": "", ".git/HEAD": "", ".env": "",
	}
	testenv.WriteFiles(t, dir, files)

	cliRef := testenv.Registry() + "/" + ns + "/cli:1"
	cmd := exec.Command("docker", "build", "-q", "-t", cliRef, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	cli := contextFiles(t, cliRef)
	var ours []string
	for _, kind := range []builder.Kind{builder.Classic, builder.BuildKit} {
		ourRef := testenv.Registry() + "/" + ns + "/ours:" + string(kind)
		e := builder.NewEngine(c, registry.Credentials{}.EngineAuth(), kind)
		if _, err := e.Build(context.Background(), builder.Request{ContextDir: dir, Dockerfile: "Dockerfile", Tags: []string{ourRef}}, io.Discard); err != nil {
			t.Fatal(err)
		}
		ours = contextFiles(t, ourRef)
		if !slices.Equal(cli, ours) {
			t.Errorf("%s: context differs from docker build's\n docker build: %v\n swarmhook:    %v", kind, cli, ours)
		}
	}
	// The comparison is only worth something if the patterns did work.
	for _, f := range []string{"/ctx/main.go", "/ctx/keep.log", "/ctx/docs/api/README.md", "/ctx/build/dist/app"} {
		if !slices.Contains(ours, f) {
			t.Errorf("%s should be in the context: %v", f, ours)
		}
	}
	for _, f := range []string{"/ctx/debug.log", "/ctx/web/node_modules/b/index.js", "/ctx/secrets/key", "/ctx/docs/api/v1/ref.md", "/ctx/tmp1"} {
		if slices.Contains(ours, f) {
			t.Errorf("%s should have been ignored: %v", f, ours)
		}
	}
}

// contextFiles lists the regular files under /ctx in image ref.
func contextFiles(t *testing.T, ref string) []string {
	t.Helper()
	out, err := exec.Command("docker", "run", "--rm", ref, "find", "/ctx", "-type", "f").CombinedOutput()
	if err != nil {
		t.Fatalf("list files of %s: %v\n%s", ref, err, out)
	}
	files := strings.Fields(string(out))
	slices.Sort(files)
	return files
}

// TestPathEscapeRefusedAtStart: a context or Dockerfile outside the
// repository stops swarmhook at start-up, naming the field.
func TestPathEscapeRefusedAtStart(t *testing.T) {
	t.Parallel()
	bin := testenv.GoBinary(t, "./cmd/swarmhook")
	tests := []struct{ name, image, want string }{
		{"context", "{name: a/app, context: ../../etc}", `projects[0].images[0].context: "../../etc" must be a relative path inside the repository`},
		{"dockerfile", "{name: a/app, context: web, dockerfile: ../../Dockerfile}", `projects[0].images[0].dockerfile: "../../Dockerfile" must be a relative path inside the context`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := fmt.Sprintf("data_dir: %s\nregistry: {host: 127.0.0.1:5000}\nprojects:\n  - {name: a, repo: file:///x, allow_unsigned: true, images: [%s]}\n", dir, tt.image)
			path := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "serve", "-config", path)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("swarmhook did not refuse to start: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("output %q lacks %q", out, tt.want)
			}
		})
	}
}

// TestRegistryOutages pushes through a proxy in front of the test
// registry: 503s are ridden out and the job deploys; a registry that
// stays down fails the job with -latest where it was and the service on
// its image.
func TestRegistryOutages(t *testing.T) {
	t.Parallel()
	c := testenv.Require(t)
	ctx := context.Background()
	ns := testenv.Unique("flaky")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	proxy := testenv.StartFlakyProxy(t, testenv.Registry())
	svc := ns + "-app"
	initial := testenv.BuildAndPush(t, c, proxy.Host+"/"+ns+"/app:init", "app v0")
	testenv.CreateService(t, c, svc, initial, testenv.ServiceOptions{})
	repo := testenv.NewGitRepo(t)
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true, retries: 3, retry_backoff: 200ms}
projects:
  - name: flaky
    repo: %s
    secret: %s
    images: [{name: %s/app}]
    deploy: [{branch: main, services: [%s], update: {monitor: 1s}, timeout: 2m}]
`, proxy.Host, repo.URL(), secret, ns, svc))
	// Tags are read from the registry itself, past the proxy.
	direct := registry.New(registry.Credentials{Host: testenv.Registry()}, true)

	t.Run("503 twice then works", func(t *testing.T) {
		// The engine rides out the first two on its own (it falls back to
		// another endpoint, and retries uploads); the two on moving
		// -latest are swarmhook's to retry.
		proxy.FailNext(2)
		proxy.FailMatching(http.MethodPut, "/manifests/main-latest", 2)
		j, log := pushAndWait(t, sh, "flaky", repo.Commit("v1", testenv.AppFiles(t, "app v1")))
		if j.Status != "succeeded" {
			t.Fatalf("job %s: %s\n%s", j.Status, j.Error, testenv.TrimLines(log, 40))
		}
		if failed := proxy.Failed(); len(failed) != 4 {
			t.Errorf("proxy failed %v, want 4 requests", failed)
		}
		for _, want := range []string{
			"move " + proxy.Host + "/" + ns + "/app:main-latest: attempt 1 of 4 failed with a transient error, retrying in 200ms",
			"attempt 2 of 4 failed with a transient error, retrying in 400ms", "503 Service Unavailable",
			"attempt 3 of 4 succeeded",
		} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
		if got := testenv.Inspect(t, c, svc).Spec.TaskTemplate.ContainerSpec.Image; got != j.Images[0].Ref {
			t.Errorf("service runs %s, want %s", got, j.Images[0].Ref)
		}
	})

	t.Run("stays down", func(t *testing.T) {
		latest, err := direct.Digest(ctx, ns+"/app", "main-latest")
		if err != nil {
			t.Fatal(err)
		}
		before := testenv.Inspect(t, c, svc).Spec.TaskTemplate.ContainerSpec.Image
		proxy.SetDown(true) // connections refused, as when the registry is not running
		defer proxy.SetDown(false)
		j, log := pushAndWait(t, sh, "flaky", repo.Commit("v2", testenv.AppFiles(t, "app v2")))
		if j.Status != "failed" || !strings.Contains(j.Error, "gave up after 4 attempts") || !strings.Contains(j.Error, "connection refused") {
			t.Fatalf("job %s: %q, want failed after 4 attempts\n%s", j.Status, j.Error, testenv.TrimLines(log, 40))
		}
		if now, err := direct.Digest(ctx, ns+"/app", "main-latest"); err != nil || now != latest {
			t.Errorf("main-latest moved from %s to %s (%v)", latest, now, err)
		}
		if got := testenv.Inspect(t, c, svc).Spec.TaskTemplate.ContainerSpec.Image; got != before {
			t.Errorf("service changed from %s to %s", before, got)
		}
		if len(j.Services) != 0 {
			t.Errorf("services touched: %+v", j.Services)
		}
	})
}
