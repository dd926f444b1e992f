package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// GitRepo is a real Git repository on disk that a test commits to, the
// way a user's repository behind a push looks.
type GitRepo struct {
	t   testing.TB
	Dir string
}

// NewGitRepo makes an empty repository with branch main.
func NewGitRepo(t testing.TB) *GitRepo {
	t.Helper()
	r := &GitRepo{t: t, Dir: t.TempDir()}
	r.Git("init", "-q", "-b", "main")
	return r
}

// URL is the repository's file:// clone URL.
func (r *GitRepo) URL() string { return "file://" + r.Dir }

// Git runs git in the repository and returns its trimmed output.
func (r *GitRepo) Git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Tess Ter", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=Tess Ter", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Write writes files (name -> content; a name ending in "@exec" is made
// executable, without the suffix) and copies binaries (name -> "copy:PATH").
func (r *GitRepo) Write(files map[string]string) {
	r.t.Helper()
	for name, body := range files {
		mode := os.FileMode(0o644)
		if n, ok := strings.CutSuffix(name, "@exec"); ok {
			name, mode = n, 0o755
		}
		if src, ok := strings.CutPrefix(body, "copy:"); ok {
			b, err := os.ReadFile(src)
			if err != nil {
				r.t.Fatal(err)
			}
			body, mode = string(b), 0o755
		}
		p := filepath.Join(r.Dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			r.t.Fatal(err)
		}
	}
}

// Commit writes files, commits them on the current branch and returns
// the new commit id.
func (r *GitRepo) Commit(message string, files map[string]string) string {
	r.t.Helper()
	r.Write(files)
	r.Git("add", "-A")
	r.Git("commit", "-q", "--allow-empty", "-m", message)
	return r.Git("rev-parse", "HEAD")
}

// WriteFiles writes files (name -> content) below dir, creating
// directories as needed.
func WriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
