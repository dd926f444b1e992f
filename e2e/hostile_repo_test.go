package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmhook/swarmhook/internal/testenv"
	"github.com/swarmhook/swarmhook/registry"
)

// What a repository can make swarmhook do: its content is written by
// whoever can push, so nothing in it may reach the host.

// commitSymlinks commits files and the symlinks links (name -> target)
// to repo and returns the commit.
func commitSymlinks(t *testing.T, repo *testenv.GitRepo, files, links map[string]string) string {
	t.Helper()
	repo.Write(files)
	for name, target := range links {
		p := filepath.Join(repo.Dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	repo.Git("add", "-A")
	repo.Git("commit", "-q", "--allow-empty", "-m", "links")
	return repo.Git("rev-parse", "HEAD")
}

// noTags fails the test when repo has any tag in the test registry.
func noTags(t *testing.T, repo string) {
	t.Helper()
	tags, err := registry.New(registry.Credentials{Host: testenv.Registry()}, true).Tags(context.Background(), repo)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("list tags of %s: %v", repo, err)
	}
	if len(tags) > 0 {
		t.Errorf("%s was pushed: tags %v", repo, tags)
	}
}

// TestSymlinkedContextStaysInWorkTree: a context reached through a
// symlink out of the work tree, to the host or to other jobs' work
// trees, fails the job, naming the link, and pushes nothing; a symlink
// inside the context that points at a host file reaches the engine and
// the image as a symlink, never as the host file. Both builders: BuildKit
// reads the context over its session (fsutil), the classic builder as a
// tar.
func TestSymlinkedContextStaysInWorkTree(t *testing.T) {
	for _, tt := range []struct{ builder, copyFailed string }{
		{"buildkit", "not found"},
		{"classic", "COPY failed"},
	} {
		t.Run(tt.builder, func(t *testing.T) { symlinkedContext(t, tt.builder, tt.copyFailed) })
	}
}

func symlinkedContext(t *testing.T, builder, copyFailed string) {
	c := testenv.Require(t)
	ns := testenv.Unique("symctx")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	marker := testenv.Unique("host-secret-")
	host := t.TempDir()
	testenv.WriteFiles(t, host, map[string]string{
		"app/Dockerfile":  "FROM swarmhook-test/busybox:latest\nCOPY secret.txt /secret.txt\n",
		"app/secret.txt":  marker,
		"host-secret.txt": marker,
	})
	repo := testenv.NewGitRepo(t)
	commit := commitSymlinks(t, repo, map[string]string{
		"README":            "a repository with symlinks",
		"inside/Dockerfile": "FROM swarmhook-test/busybox:latest\nCOPY . /ctx\n",
		"copy/Dockerfile":   "FROM swarmhook-test/busybox:latest\nCOPY leak /leak\n",
		// The classic builder's cache key for COPY leaves a symlink's
		// target out: a file unique to this run keeps an earlier run's
		// layer (a link to its own temp dir) from standing in for this one.
		"inside/run.txt": host,
	}, map[string]string{
		"sub":         host,
		"up":          "../..", // from data_dir/work/<lane>: the data directory, other branches' work trees
		"inside/leak": filepath.Join(host, "host-secret.txt"),
		"copy/leak":   filepath.Join(host, "host-secret.txt"),
	})
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
docker: {builder: %s}
projects:
  - {name: escape, repo: %s, secret: %s, images: [{name: %s/escape, context: sub/app}]}
  - {name: sibling, repo: %s, secret: %s, images: [{name: %s/sibling, context: up/work}]}
  - {name: inside, repo: %s, secret: %s, images: [{name: %s/inside, context: inside}]}
  - {name: copy, repo: %s, secret: %s, images: [{name: %s/copy, context: copy}]}
`, testenv.Registry(), builder, repo.URL(), secret, ns, repo.URL(), secret, ns, repo.URL(), secret, ns, repo.URL(), secret, ns))

	escapes := []struct{ project, want string }{
		{"escape", fmt.Sprintf(`context "sub/app": sub is a symlink to %s, outside the work tree`, host)},
		{"sibling", `context "up/work": up is a symlink to ../.., outside the work tree`},
	}
	for _, tt := range escapes {
		t.Run("context through a symlink out of the work tree: "+tt.project, func(t *testing.T) {
			j, log := pushAndWait(t, sh, tt.project, commit)
			if j.Status != "failed" || !strings.Contains(j.Error, tt.want) {
				t.Fatalf("job %s: %q, want failed with %q\n%s", j.Status, j.Error, tt.want, testenv.TrimLines(log, 40))
			}
			if strings.Contains(log, marker) {
				t.Errorf("the host file reached the job log:\n%s", log)
			}
			noTags(t, ns+"/"+tt.project)
		})
	}

	t.Run("COPY of a symlink out of the context", func(t *testing.T) {
		// The link reaches the engine as a link, which it resolves inside
		// the context, where its target does not exist.
		j, log := pushAndWait(t, sh, "copy", commit)
		if j.Status != "failed" || !strings.Contains(j.Error, copyFailed) {
			t.Fatalf("job %s: %q, want the COPY to fail\n%s", j.Status, j.Error, testenv.TrimLines(log, 40))
		}
		if strings.Contains(log, marker) {
			t.Errorf("the host file reached the job log:\n%s", log)
		}
		noTags(t, ns+"/copy")
	})

	t.Run("symlink inside the context stays a symlink", func(t *testing.T) {
		j, log := pushAndWait(t, sh, "inside", commit)
		if j.Status != "succeeded" {
			t.Fatalf("job %s: %s\n%s", j.Status, j.Error, testenv.TrimLines(log, 40))
		}
		ref := testenv.Registry() + "/" + ns + "/inside:" + j.Images[0].Tag
		out, _ := exec.Command("docker", "run", "--rm", ref, "sh", "-c", "readlink /ctx/leak; cat /ctx/leak").CombinedOutput()
		if strings.Contains(string(out), marker) {
			t.Fatalf("the host file is in the image: %s", out)
		}
		if !strings.Contains(string(out), filepath.Join(host, "host-secret.txt")) {
			t.Errorf("/ctx/leak should be the symlink as committed; got %s", out)
		}
	})
}

// TestDockerignoreIsBounded: a .dockerignore that is a symlink to an
// endless device, or a regular file past the size limit, fails the job
// with a clear error before anything is built, and swarmhook's memory
// stays where it was.
func TestDockerignoreIsBounded(t *testing.T) {
	c := testenv.Require(t)
	ns := testenv.Unique("ignbound")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	urandom := testenv.NewGitRepo(t)
	endless := commitSymlinks(t, urandom, testenv.AppFiles(t, "v1"), map[string]string{".dockerignore": "/dev/urandom"})
	big := testenv.NewGitRepo(t)
	files := testenv.AppFiles(t, "v1")
	files[".dockerignore"] = strings.Repeat("# a comment line that is there to make the file large\n", 100_000) // 5.4 MB
	large := big.Commit("large ignore file", files)
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - {name: endless, repo: %s, secret: %s, images: [{name: %s/endless}]}
  - {name: large, repo: %s, secret: %s, images: [{name: %s/large}]}
`, testenv.Registry(), urandom.URL(), secret, ns, big.URL(), secret, ns))

	tests := []struct{ project, commit, want string }{
		{"endless", endless, ".dockerignore is a symlink to /dev/urandom, outside the work tree"},
		{"large", large, ".dockerignore is 5400000 bytes, more than the 262144 allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.project, func(t *testing.T) {
			j, log := pushAndWait(t, sh, tt.project, tt.commit)
			if j.Status != "failed" || !strings.Contains(j.Error, tt.want) {
				t.Fatalf("job %s: %q, want failed with %q\n%s", j.Status, j.Error, tt.want, testenv.TrimLines(log, 40))
			}
			noTags(t, ns+"/"+tt.project)
			// Swarmhook idles at a few tens of MB; reading the device
			// grew it by gigabytes.
			if peak := sh.PeakRSS(); peak > 256<<20 {
				t.Errorf("swarmhook's peak memory reached %d MB", peak>>20)
			}
		})
	}
}
