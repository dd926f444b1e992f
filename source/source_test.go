package source

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

// gitRepo makes a real Git repository with the git CLI, the way a user's
// repository looks, and returns its file:// URL and a commit helper.
func gitRepo(t *testing.T) (url string, commit func(files map[string]string) string) {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) string { t.Helper(); return runGit(t, dir, nil, args...) }
	run("init", "-q", "-b", "main")
	return "file://" + dir, func(files map[string]string) string {
		for name, body := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			mode := os.FileMode(0o644)
			if strings.HasSuffix(name, ".sh") {
				mode = 0o755
			}
			if err := os.WriteFile(p, []byte(body), mode); err != nil {
				t.Fatal(err)
			}
		}
		run("add", "-A")
		run("commit", "-q", "-m", "change")
		return run("rev-parse", "HEAD")
	}
}

// runGit runs the git CLI in dir with a fixed identity and env added,
// and returns its output.
func runGit(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestCheckout(t *testing.T) {
	url, commit := gitRepo(t)
	first := commit(map[string]string{"Dockerfile": "FROM scratch\n", "app/run.sh": "#!/bin/sh\n", "app/deep/x.txt": "x"})
	m, err := NewMirrors(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	work := t.TempDir()

	var log bytes.Buffer
	dest := filepath.Join(work, "one")
	if _, err := m.Checkout(ctx, Repo{URL: url}, "refs/heads/main", first, dest, &log); err != nil {
		t.Fatalf("Checkout: %v\n%s", err, log.String())
	}
	if b, err := os.ReadFile(filepath.Join(dest, "app/deep/x.txt")); err != nil || string(b) != "x" {
		t.Errorf("app/deep/x.txt = %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dest, "app/run.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("run.sh should be executable: %v %v", fi.Mode(), err)
	}
	if !strings.Contains(log.String(), "fetching refs/heads/main") {
		t.Errorf("first checkout should fetch, log:\n%s", log.String())
	}

	// The same commit again: the repository is asked where main is,
	// and nothing new comes.
	log.Reset()
	if _, err := m.Checkout(ctx, Repo{URL: url}, "refs/heads/main", first, filepath.Join(work, "two"), &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "refs/heads/main already up to date") {
		t.Errorf("second checkout should find main up to date, log:\n%s", log.String())
	}

	// A new commit: fetched incrementally, and the old file is changed.
	second := commit(map[string]string{"app/deep/x.txt": "y"})
	dest = filepath.Join(work, "three")
	if _, err := m.Checkout(ctx, Repo{URL: url}, "refs/heads/main", second, dest, &log); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "app/deep/x.txt")); string(b) != "y" {
		t.Errorf("after second push x.txt = %q", b)
	}
}

func TestCheckoutMissingCommit(t *testing.T) {
	url, commit := gitRepo(t)
	commit(map[string]string{"a": "a"})
	m, err := NewMirrors(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Checkout(context.Background(), Repo{URL: url}, "refs/heads/main", strings.Repeat("ab", 20), filepath.Join(t.TempDir(), "w"), &bytes.Buffer{})
	if !errors.Is(err, ErrCommitNotFound) {
		t.Fatalf("err = %v, want ErrCommitNotFound", err)
	}
	if !strings.Contains(err.Error(), "force-pushed") {
		t.Errorf("error should say why: %v", err)
	}
}

// Only the tip of the pushed ref as fetched now builds: a re-sent or late
// push of an older commit checks out the tip instead, even when the
// mirror has the older commit from an earlier build; a commit no longer
// on the ref fails, naming the tip.
func TestCheckoutOnlyTheTip(t *testing.T) {
	tests := []struct {
		name string
		// prepare makes history in repo, may check some of it out, and
		// returns the ref and commit to check out and the tip.
		prepare func(repo *testenv.GitRepo, checkout func(ref, commit string)) (ref, commit, tip string)
		want    error
	}{
		{"the tip", func(repo *testenv.GitRepo, _ func(string, string)) (string, string, string) {
			repo.Commit("a", map[string]string{"a": "a"})
			b := repo.Commit("b", map[string]string{"a": "b"})
			return "refs/heads/main", b, b
		}, nil},
		{"an older commit, in the mirror", func(repo *testenv.GitRepo, checkout func(string, string)) (string, string, string) {
			a := repo.Commit("a", map[string]string{"a": "a"})
			checkout("refs/heads/main", a)
			b := repo.Commit("b", map[string]string{"a": "b"})
			checkout("refs/heads/main", b)
			return "refs/heads/main", a, b
		}, nil},
		{"an older commit, never fetched", func(repo *testenv.GitRepo, _ func(string, string)) (string, string, string) {
			a := repo.Commit("a", map[string]string{"a": "a"})
			b := repo.Commit("b", map[string]string{"a": "b"})
			return "refs/heads/main", a, b
		}, nil},
		{"force-pushed away, in the mirror", func(repo *testenv.GitRepo, checkout func(string, string)) (string, string, string) {
			a := repo.Commit("a", map[string]string{"a": "a"})
			gone := repo.Commit("gone", map[string]string{"a": "gone"})
			checkout("refs/heads/main", gone)
			repo.Git("reset", "-q", "--hard", a)
			return "refs/heads/main", gone, a
		}, ErrCommitNotFound},
		{"on another branch only", func(repo *testenv.GitRepo, checkout func(string, string)) (string, string, string) {
			a := repo.Commit("a", map[string]string{"a": "a"})
			repo.Git("checkout", "-q", "-b", "other")
			other := repo.Commit("other", map[string]string{"a": "other"})
			checkout("refs/heads/other", other)
			return "refs/heads/main", other, a
		}, ErrCommitNotFound},
		{"an annotated tag", func(repo *testenv.GitRepo, _ func(string, string)) (string, string, string) {
			a := repo.Commit("a", map[string]string{"a": "a"})
			repo.Git("tag", "-a", "-m", "v1", "v1")
			repo.Commit("b", map[string]string{"a": "b"})
			return "refs/tags/v1", a, a
		}, nil},
		{"a tag moved on", func(repo *testenv.GitRepo, checkout func(string, string)) (string, string, string) {
			a := repo.Commit("a", map[string]string{"a": "a"})
			repo.Git("tag", "v1")
			checkout("refs/tags/v1", a)
			b := repo.Commit("b", map[string]string{"a": "b"})
			repo.Git("tag", "-f", "v1")
			return "refs/tags/v1", a, b
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := testenv.NewGitRepo(t)
			m, err := NewMirrors(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			ctx, work := context.Background(), t.TempDir()
			n := 0
			checkout := func(ref, commit string) {
				t.Helper()
				n++
				if _, err := m.Checkout(ctx, Repo{URL: repo.URL()}, ref, commit, filepath.Join(work, strconv.Itoa(n)), io.Discard); err != nil {
					t.Fatalf("checkout %s at %s: %v", ref, commit, err)
				}
			}
			ref, commit, tip := tt.prepare(repo, checkout)
			var log bytes.Buffer
			got, err := m.Checkout(ctx, Repo{URL: repo.URL()}, ref, commit, filepath.Join(work, "last"), &log)
			if tt.want != nil {
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), commit+" is not on "+ref+" (now at "+tip+")") {
					t.Fatalf("err = %v, want %v naming %s and the tip %s", err, tt.want, commit, tip)
				}
				return
			}
			if err != nil || got != tip {
				t.Fatalf("Checkout = %s, %v; want the tip %s", got, err, tip)
			}
			if b, _ := os.ReadFile(filepath.Join(work, "last", "a")); string(b) != repo.Git("show", tip+":a") {
				t.Errorf("work tree holds a = %q, want the tip's", b)
			}
			if moved := strings.Contains(log.String(), ref+" has moved on from "+commit+" to "+tip); moved != (commit != tip) {
				t.Errorf("log says the ref moved: %v, want %v\n%s", moved, commit != tip, log.String())
			}
		})
	}
}

func TestHead(t *testing.T) {
	url, commit := gitRepo(t)
	want := commit(map[string]string{"a": "a"})
	m, _ := NewMirrors(t.TempDir())
	got, err := m.Head(context.Background(), Repo{URL: url}, "refs/heads/main")
	if err != nil || got != want {
		t.Errorf("Head = %s, %v; want %s", got, err, want)
	}
	if _, err := m.Head(context.Background(), Repo{URL: url}, "refs/heads/nope"); !errors.Is(err, ErrCommitNotFound) {
		t.Errorf("missing branch: %v", err)
	}
}

func TestCheckoutPrivateHTTP(t *testing.T) {
	repo := testenv.NewGitRepo(t)
	want := repo.Commit("one", map[string]string{"a.txt": "private"})
	const token = "s3cret-token-value"
	url := testenv.ServeGit(t, repo, "deployer", token)
	m, err := NewMirrors(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var log bytes.Buffer

	_, err = m.Checkout(ctx, Repo{URL: url, Auth: TokenAuth("deployer", "wrong-token-value")}, "refs/heads/main", want, filepath.Join(t.TempDir(), "w"), &log)
	if err == nil {
		t.Fatal("fetch with a wrong token succeeded")
	}
	if strings.Contains(err.Error()+log.String(), "wrong-token-value") {
		t.Errorf("the token leaked: %v\n%s", err, log.String())
	}

	dest := filepath.Join(t.TempDir(), "w")
	if _, err := m.Checkout(ctx, Repo{URL: url, Auth: TokenAuth("deployer", token)}, "refs/heads/main", want, dest, &log); err != nil {
		t.Fatalf("Checkout with the token: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "a.txt")); string(b) != "private" {
		t.Errorf("a.txt = %q", b)
	}
	if strings.Contains(log.String(), token) {
		t.Errorf("the token is in the log:\n%s", log.String())
	}
}

func TestCheckoutSubmodules(t *testing.T) {
	lib := testenv.NewGitRepo(t)
	lib.Commit("lib", map[string]string{"lib.txt": "lib v1"})
	app := testenv.NewGitRepo(t)
	app.Commit("app", map[string]string{"app.txt": "app"})
	app.Git("-c", "protocol.file.allow=always", "submodule", "add", "-q", lib.URL(), "vendor/lib")
	lib.Commit("lib v2, not pinned", map[string]string{"lib.txt": "lib v2"})
	commit := app.Commit("add lib", nil)

	m, err := NewMirrors(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		submodules bool
		want       string
	}{
		{"off leaves the directory empty", false, ""},
		{"on checks out the pinned commit", true, "lib v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "w")
			var log bytes.Buffer
			if _, err := m.Checkout(context.Background(), Repo{URL: app.URL(), Submodules: tt.submodules}, "refs/heads/main", commit, dest, &log); err != nil {
				t.Fatalf("Checkout: %v\n%s", err, log.String())
			}
			b, _ := os.ReadFile(filepath.Join(dest, "vendor/lib/lib.txt"))
			if string(b) != tt.want {
				t.Errorf("vendor/lib/lib.txt = %q, want %q\n%s", b, tt.want, log.String())
			}
		})
	}
}

func TestResolveSubmoduleURL(t *testing.T) {
	tests := []struct{ parent, sub, want string }{
		{"https://git.example.com/team/app.git", "../lib.git", "https://git.example.com/team/lib.git"},
		{"https://git.example.com/team/app.git", "./lib", "https://git.example.com/team/app.git/lib"},
		{"git@example.com:team/app.git", "../lib.git", "git@example.com:team/lib.git"},
		{"ssh://git@example.com/team/app.git", "../../other/lib.git", "ssh://git@example.com/other/lib.git"},
		{"https://a/b.git", "https://c/d.git", "https://c/d.git"},
	}
	for _, tt := range tests {
		got, err := resolveSubmoduleURL(tt.parent, tt.sub)
		if err != nil || got != tt.want {
			t.Errorf("resolveSubmoduleURL(%q, %q) = %q, %v; want %q", tt.parent, tt.sub, got, err, tt.want)
		}
	}
}

func TestSSHUser(t *testing.T) {
	for url, want := range map[string]string{
		"ssh://deploy@example.com/a.git": "deploy", "ssh://example.com/a.git": "git",
		"gitea@example.com:team/a.git": "gitea",
	} {
		if got := sshUser(url); got != want {
			t.Errorf("sshUser(%q) = %q, want %q", url, got, want)
		}
	}
}

func TestDeployKeyAuthNeverShowsTheKey(t *testing.T) {
	key := filepath.Join(t.TempDir(), "key")
	os.WriteFile(key, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key-material\n-----END OPENSSH PRIVATE KEY-----\n"), 0o600)
	_, err := DeployKeyAuth("ssh://git@example.com/a.git", key, "", "")
	if err == nil || strings.Contains(err.Error(), "not-a-real-key-material") {
		t.Errorf("err = %v", err)
	}
}
