package source

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitRepo makes a real Git repository with the git CLI, the way a user's
// repository looks, and returns its file:// URL and a commit helper.
func gitRepo(t *testing.T) (url string, commit func(files map[string]string) string) {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
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
	if err := m.Checkout(ctx, Repo{URL: url}, "refs/heads/main", first, dest, &log); err != nil {
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

	// The same commit again: served from the mirror.
	log.Reset()
	if err := m.Checkout(ctx, Repo{URL: url}, "refs/heads/main", first, filepath.Join(work, "two"), &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "no fetch needed") {
		t.Errorf("second checkout should not fetch, log:\n%s", log.String())
	}

	// A new commit: fetched incrementally, and the old file is changed.
	second := commit(map[string]string{"app/deep/x.txt": "y"})
	dest = filepath.Join(work, "three")
	if err := m.Checkout(ctx, Repo{URL: url}, "refs/heads/main", second, dest, &log); err != nil {
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
	err = m.Checkout(context.Background(), Repo{URL: url}, "refs/heads/main", strings.Repeat("ab", 20), filepath.Join(t.TempDir(), "w"), &bytes.Buffer{})
	if !errors.Is(err, ErrCommitNotFound) {
		t.Fatalf("err = %v, want ErrCommitNotFound", err)
	}
	if !strings.Contains(err.Error(), "force-pushed") {
		t.Errorf("error should say why: %v", err)
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
