package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

// cliRun runs the swarmhook binary as a client of sh: server and token
// from SWARMHOOK_URL and SWARMHOOK_TOKEN, as the README recommends. It
// returns the exit code, stdout and stderr.
func cliRun(t *testing.T, sh *testenv.Swarmhook, args ...string) (int, string, string) {
	t.Helper()
	return cliRunAs(t, sh, sh.Token, args...)
}

// cliRunAs is cliRun with another token.
func cliRunAs(t *testing.T, sh *testenv.Swarmhook, token string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(testenv.GoBinary(t, "./cmd/swarmhook"), args...)
	cmd.Env = append(os.Environ(), "SWARMHOOK_URL="+sh.URL, "SWARMHOOK_TOKEN="+token)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("swarmhook %s still running after 5 minutes", strings.Join(args, " "))
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// cliJSON runs a command with -o json, wants exit code 0 and decodes its
// output into v.
func cliJSON(t *testing.T, sh *testenv.Swarmhook, v any, args ...string) {
	t.Helper()
	code, out, errOut := cliRun(t, sh, append(args, "-o", "json")...)
	if code != 0 {
		t.Fatalf("swarmhook %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("swarmhook %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestCLIAgainstARealServer runs every CLI twin of the README's curl
// lines against the real binary, engine, registry and Swarm, and checks
// what each did to the services.
func TestCLIAgainstARealServer(t *testing.T) {
	t.Parallel()
	c := testenv.Require(t)
	ns := testenv.Unique("cli")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	repo := testenv.NewGitRepo(t)
	a, b := ns+"-a", ns+"-b"
	initial := testenv.BuildAndPushDockerfile(t, c, fmt.Sprintf("%s/%s/app:init", testenv.Registry(), ns), "good v0", testenv.HealthyDockerfile)
	testenv.CreateService(t, c, a, initial, testenv.ServiceOptions{})
	testenv.CreateService(t, c, b, initial, testenv.ServiceOptions{})
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - name: cli
    repo: %s
    secret: %s
    images: [{name: %s/app}]
    deploy:
      - branch: main
        services: [{name: %s, image: %s/app}, {name: %s, image: %s/app}]
        update: {parallelism: 1, monitor: 1s, failure_action: rollback}
        timeout: 2m
`, testenv.Registry(), repo.URL(), secret, ns, a, ns, b, ns))
	image := func(svc string) string { return testenv.Inspect(t, c, svc).Spec.TaskTemplate.ContainerSpec.Image }

	v1, _ := sh.PushApp(repo, "cli", secret, "main", "good v1", false)
	v2, _ := sh.PushApp(repo, "cli", secret, "main", "good v2", false)
	if v1.Status != "succeeded" || v2.Status != "succeeded" {
		t.Fatalf("pushes: %s %s / %s %s", v1.Status, v1.Error, v2.Status, v2.Error)
	}
	v1Tag, v2Tag := v1.Images[0].Tag, v2.Images[0].Tag

	t.Run("jobs, job, log", func(t *testing.T) {
		var list struct{ Jobs []testenv.Job }
		cliJSON(t, sh, &list, "jobs", "-project", "cli")
		if len(list.Jobs) != 2 || list.Jobs[0].ID != v2.ID || list.Jobs[1].ID != v1.ID {
			t.Errorf("jobs: %+v, want %d then %d", list.Jobs, v2.ID, v1.ID)
		}
		code, out, _ := cliRun(t, sh, "jobs")
		if code != 0 || !strings.Contains(out, "STATUS") || strings.Count(out, "succeeded") != 2 {
			t.Errorf("jobs table: exit %d\n%s", code, out)
		}
		var j testenv.Job
		cliJSON(t, sh, &j, "job", fmt.Sprint(v1.ID))
		if j.Status != "succeeded" || j.Images[0].Tag != v1Tag {
			t.Errorf("job %d: %+v", v1.ID, j)
		}
		code, out, _ = cliRun(t, sh, "log", fmt.Sprint(v1.ID))
		if code != 0 || !strings.Contains(out, v1Tag) {
			t.Errorf("log: exit %d, no %s in\n%s", code, v1Tag, out)
		}
	})

	t.Run("services and tags", func(t *testing.T) {
		var svcs struct {
			Services []struct{ Name, Tag string }
		}
		cliJSON(t, sh, &svcs, "services")
		found := 0
		for _, s := range svcs.Services {
			if (s.Name == a || s.Name == b) && s.Tag == v2Tag {
				found++
			}
		}
		if found != 2 {
			t.Errorf("services: %+v, want %s and %s on %s", svcs.Services, a, b, v2Tag)
		}
		var tags struct {
			Tags []struct{ Tag, Status string }
		}
		cliJSON(t, sh, &tags, "tags", a)
		if len(tags.Tags) != 2 || tags.Tags[0].Tag != v2Tag || tags.Tags[1].Tag != v1Tag || tags.Tags[1].Status != "succeeded" {
			t.Errorf("tags: %+v", tags.Tags)
		}
	})

	t.Run("rollback to a tag, then Swarm's previous spec", func(t *testing.T) {
		code, out, errOut := cliRun(t, sh, "rollback", a, "--to", v1Tag, "--wait")
		if code != 0 || !strings.Contains(out, "succeeded") {
			t.Fatalf("rollback --to: exit %d\n%s%s", code, out, errOut)
		}
		if got := image(a); got != v1.Images[0].Ref {
			t.Errorf("%s runs %s, want %s", a, got, v1.Images[0].Ref)
		}
		if code, out, errOut := cliRun(t, sh, "rollback", a, "-wait"); code != 0 {
			t.Fatalf("rollback: exit %d\n%s%s", code, out, errOut)
		}
		if got := image(a); got != v2.Images[0].Ref {
			t.Errorf("after Swarm's rollback %s runs %s, want %s", a, got, v2.Images[0].Ref)
		}
		code, _, errOut = cliRun(t, sh, "rollback", a, "--to", "main-20000101000000")
		if code != 1 || !strings.Contains(errOut, "404") || !strings.Contains(errOut, v1Tag) {
			t.Errorf("unknown tag: exit %d, stderr %q; want 1 and the nearest tags", code, errOut)
		}
	})

	t.Run("deploy a tag, redeploy, scale", func(t *testing.T) {
		if code, out, errOut := cliRun(t, sh, "deploy", "cli", "--branch", "main", "--tag", v1Tag, "--wait"); code != 0 {
			t.Fatalf("deploy --tag: exit %d\n%s%s", code, out, errOut)
		}
		if image(a) != v1.Images[0].Ref || image(b) != v1.Images[0].Ref {
			t.Errorf("after deploy of %s: %s, %s", v1Tag, image(a), image(b))
		}
		before := testenv.Inspect(t, c, b).Spec.TaskTemplate.ForceUpdate
		if code, out, errOut := cliRun(t, sh, "redeploy", b, "-wait"); code != 0 {
			t.Fatalf("redeploy: exit %d\n%s%s", code, out, errOut)
		}
		if after := testenv.Inspect(t, c, b).Spec.TaskTemplate.ForceUpdate; after == before {
			t.Errorf("redeploy left ForceUpdate at %d", after)
		}
		if code, out, errOut := cliRun(t, sh, "scale", a, "2", "-wait"); code != 0 {
			t.Fatalf("scale: exit %d\n%s%s", code, out, errOut)
		}
		if r := *testenv.Inspect(t, c, a).Spec.Mode.Replicated.Replicas; r != 2 {
			t.Errorf("%s has %d replicas, want 2", a, r)
		}
	})

	t.Run("log -f follows a job to its end", func(t *testing.T) {
		var started struct{ Job int64 }
		cliJSON(t, sh, &started, "rollback", a, "--to", v2Tag)
		if started.Job == 0 {
			t.Fatal("rollback answered no job")
		}
		code, out, errOut := cliRun(t, sh, "log", fmt.Sprint(started.Job), "-f")
		if code != 0 {
			t.Fatalf("log -f: exit %d\n%s", code, errOut)
		}
		var j testenv.Job
		cliJSON(t, sh, &j, "job", fmt.Sprint(started.Job))
		if j.Status != "succeeded" || !strings.Contains(out, a) {
			t.Errorf("log -f returned before the job ended (%s), or without its lines:\n%s", j.Status, out)
		}
	})

	t.Run("a failed job exits 3", func(t *testing.T) {
		files := testenv.AppFiles(t, "broken")
		files["Dockerfile"] = "FROM swarmhook-test/busybox:latest\nRUN exit 7\n"
		repo.Git("checkout", "-q", "main")
		repo.Commit("does not build", files)
		code, out, errOut := cliRun(t, sh, "deploy", "cli", "--branch", "main", "--wait")
		if code != 3 || !strings.Contains(out, "failed") {
			t.Errorf("deploy of a commit that does not build: exit %d, want 3\n%s%s", code, out, errOut)
		}
	})

	t.Run("token from a file, refused without one", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(file, []byte(testenv.ReadToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(testenv.GoBinary(t, "./cmd/swarmhook"), "rollback", a, "-token-file", file)
		cmd.Env = append(os.Environ(), "SWARMHOOK_URL="+sh.URL, "SWARMHOOK_TOKEN=")
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "403") {
			t.Errorf("rollback with the read token's file: exit %d %s, want 1 and 403", cmd.ProcessState.ExitCode(), out)
		}
	})

	// promote, approve, reject and freeze: e2e/TestCLIPromoteApproveFreeze.
}
