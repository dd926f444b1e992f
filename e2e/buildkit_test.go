package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/internal/testenv"
	"github.com/swarmhook/swarmhook/registry"
)

// TestBuildKitBuild builds through the engine's BuildKit over a session:
// a secret reaches the RUN that mounts it and neither the image, its
// history nor the log; a cache mount keeps what a RUN left in it for the
// next build; labels and build args cost no steps; the target stage is
// built; the file a stage made reaches the final image.
func TestBuildKitBuild(t *testing.T) {
	t.Parallel()
	c := testenv.Require(t)
	ctx := context.Background()
	ns := testenv.Unique("bk")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	secret := "s3cr3t-" + testenv.Unique("v")
	dir := t.TempDir()
	testenv.WriteFiles(t, dir, map[string]string{
		"Dockerfile": `# syntax is the engine's built-in frontend
FROM swarmhook-test/busybox:latest AS one
ARG GREETING
RUN --mount=type=secret,id=token test "$(cat /run/secrets/token)" = "` + secret + `" && echo "$GREETING" > /one.txt && echo secret-seen
FROM swarmhook-test/busybox:latest AS two
ARG ROUND
RUN --mount=type=cache,target=/cache sh -c 'cat /cache/n 2>/dev/null || echo first; echo "$ROUND" > /cache/n' > /two.txt
FROM swarmhook-test/busybox:latest AS final
COPY --from=one /one.txt /one.txt
COPY --from=two /two.txt /two.txt
COPY app.txt /app.txt
FROM final AS unused
RUN false
`,
		"app.txt": "app",
	})
	e := builder.NewEngine(c, registry.Credentials{}.EngineAuth(), builder.BuildKit)
	req := builder.Request{
		ContextDir: dir, Dockerfile: "Dockerfile", Target: "final",
		BuildArgs: map[string]string{"GREETING": "hello", "ROUND": ns + "-1"},
		Labels:    map[string]string{"a": "1", "b": "2", "c": "3"},
		Secrets:   map[string]string{"token": secret},
	}
	build := func(tag string) (string, string) {
		t.Helper()
		ref := testenv.Registry() + "/" + ns + "/app:" + tag
		req.Tags = []string{ref}
		var log bytes.Buffer
		id, err := e.Build(ctx, req, &log)
		if err != nil {
			t.Fatalf("build: %v\n%s", err, log.String())
		}
		if strings.Contains(log.String(), secret) {
			t.Errorf("the secret's value is in the build log:\n%s", log.String())
		}
		return id, ref
	}
	id, ref := build("1")
	if !strings.HasPrefix(id, "sha256:") {
		t.Errorf("image id = %q", id)
	}
	run := func(ref, file string) string {
		t.Helper()
		out, err := exec.Command("docker", "run", "--rm", "--entrypoint", "cat", ref, file).CombinedOutput()
		if err != nil {
			t.Fatalf("docker run cat %s: %v\n%s", file, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run(ref, "/one.txt"); got != "hello" {
		t.Errorf("/one.txt = %q, want the build arg's value", got)
	}
	if got := run(ref, "/app.txt"); got != "app" {
		t.Errorf("/app.txt = %q", got)
	}

	inspect, _, err := c.ImageInspectWithRaw(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range req.Labels {
		if inspect.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, inspect.Config.Labels[k], v)
		}
	}
	hist, err := c.ImageHistory(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hist {
		if strings.Contains(h.CreatedBy, "LABEL") {
			t.Errorf("labels made a step of their own: %q", h.CreatedBy)
		}
	}
	// Nothing the engine keeps of the image holds the secret.
	save, err := c.ImageSave(ctx, []string{ref})
	if err != nil {
		t.Fatal(err)
	}
	all, _ := io.ReadAll(save)
	save.Close()
	raw, _ := json.Marshal(inspect)
	if bytes.Contains(all, []byte(secret)) || bytes.Contains(raw, []byte(secret)) {
		t.Error("the secret's value is in the image")
	}

	// The cache mount: the second build's RUN, whose build arg changed,
	// finds what the first one's left there.
	req.BuildArgs = map[string]string{"GREETING": "again", "ROUND": ns + "-2"}
	_, ref2 := build("2")
	if got := run(ref2, "/two.txt"); got != ns+"-1" {
		t.Errorf("/two.txt = %q, want %q, what the first build left in the cache mount", got, ns+"-1")
	}
	if got := run(ref2, "/one.txt"); got != "again" {
		t.Errorf("/one.txt = %q, want again", got)
	}
}

// TestBuildKitSecretNeverInError: a failing build whose output holds the
// secret reports the failure with the value replaced, in the error and
// in the log.
func TestBuildKitSecretNeverInError(t *testing.T) {
	t.Parallel()
	c := testenv.Require(t)
	ns := testenv.Unique("bkerr")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	secret := "leak-" + testenv.Unique("v")
	dir := t.TempDir()
	testenv.WriteFiles(t, dir, map[string]string{
		"Dockerfile": "FROM swarmhook-test/busybox:latest\nRUN --mount=type=secret,id=token cat /run/secrets/token; echo; cat /run/secrets/token >&2; exit 3\n",
	})
	e := builder.NewEngine(c, registry.Credentials{}.EngineAuth(), builder.BuildKit)
	var log bytes.Buffer
	_, err := e.Build(context.Background(), builder.Request{
		ContextDir: dir, Dockerfile: "Dockerfile", Tags: []string{testenv.Registry() + "/" + ns + "/app:1"},
		Secrets: map[string]string{"token": secret},
	}, &log)
	if err == nil {
		t.Fatal("build of a failing RUN succeeded")
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(log.String(), secret) {
		t.Errorf("secret value leaked\nerror: %v\nlog:\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "***") {
		t.Errorf("log should show the RUN's output with the value redacted:\n%s", log.String())
	}
}

// TestBuildKitReadsOnlyTheCheckedDockerignore: BuildKit would take a
// Dockerfile.dockerignore over .dockerignore, but only the latter is
// checked (size, patterns); the former is never served, so what
// .dockerignore leaves out stays out. (Docker 20.10's frontend does not
// look for the file yet; later engines' do.)
func TestBuildKitReadsOnlyTheCheckedDockerignore(t *testing.T) {
	t.Parallel()
	c := testenv.Require(t)
	ns := testenv.Unique("bkign")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	dir := t.TempDir()
	testenv.WriteFiles(t, dir, map[string]string{
		"Dockerfile":              "FROM swarmhook-test/busybox:latest\nCOPY . /ctx\n",
		"Dockerfile.dockerignore": "nothing-ignored\n",
		".dockerignore":           "private.txt\n",
		"private.txt":             "x",
		"public.txt":              "y",
	})
	ref := testenv.Registry() + "/" + ns + "/app:1"
	e := builder.NewEngine(c, registry.Credentials{}.EngineAuth(), builder.BuildKit)
	if _, err := e.Build(context.Background(), builder.Request{ContextDir: dir, Dockerfile: "Dockerfile", Tags: []string{ref}}, io.Discard); err != nil {
		t.Fatal(err)
	}
	files := contextFiles(t, ref)
	if slices.Contains(files, "/ctx/private.txt") || !slices.Contains(files, "/ctx/public.txt") {
		t.Errorf("context files %v: want public.txt and not private.txt", files)
	}
}

// TestBuildSecretFromConfig: a secret written as ${VAR} in the config
// reaches the RUN that mounts it in a real job (the image holds its
// hash), and its value is in neither the image, the job log, the job's
// record nor swarmhook's own output; the RUN that prints it shows ***.
func TestBuildSecretFromConfig(t *testing.T) {
	c := testenv.Require(t)
	ns := testenv.Unique("bksec")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	value := "npm-" + testenv.Unique("tok")
	t.Setenv("SWARMHOOK_TEST_NPM_TOKEN", value)
	repo := testenv.NewGitRepo(t)
	commit := repo.Commit("secret", map[string]string{
		// The first RUN makes the build this test's own: BuildKit keeps a
		// step whatever the secrets it mounts, as docker build does.
		"Dockerfile": "FROM swarmhook-test/busybox:latest\nRUN echo " + ns + " > /ns\n" +
			"RUN --mount=type=secret,id=npm sh -c 'cat /run/secrets/npm; echo; sha256sum /run/secrets/npm | cut -c1-64 > /npm.sha'\n",
	})
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
docker: {builder: buildkit}
projects:
  - name: sec
    repo: %s
    secret: %s
    images: [{name: %s/app, secrets: {npm: "${SWARMHOOK_TEST_NPM_TOKEN}"}}]
`, testenv.Registry(), repo.URL(), secret, ns))
	j, log := pushAndWait(t, sh, "sec", commit)
	if j.Status != "succeeded" {
		t.Fatalf("job %s: %s\n%s", j.Status, j.Error, log)
	}
	if !strings.Contains(log, "***") {
		t.Errorf("the RUN's output should show the value replaced:\n%s", log)
	}
	_, record := sh.API(http.MethodGet, fmt.Sprintf("/api/jobs/%d", j.ID), nil)
	for what, text := range map[string]string{"job log": log, "job record": string(record), "swarmhook output": sh.Output()} {
		if strings.Contains(text, value) {
			t.Errorf("the secret's value is in the %s", what)
		}
	}
	// Output, not CombinedOutput: the restamped image is pulled first.
	out, err := exec.Command("docker", "run", "--rm", "--entrypoint", "cat", j.Images[0].Ref, "/npm.sha").Output()
	sum := sha256.Sum256([]byte(value))
	if err != nil || strings.TrimSpace(string(out)) != hex.EncodeToString(sum[:]) {
		t.Errorf("/npm.sha = %q (%v): the secret did not reach the RUN", out, err)
	}
	save, err := c.ImageSave(context.Background(), []string{j.Images[0].Ref})
	if err != nil {
		t.Fatal(err)
	}
	all, _ := io.ReadAll(save)
	save.Close()
	if bytes.Contains(all, []byte(value)) {
		t.Error("the secret's value is in the image")
	}
}
