package source

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// treeFiles lists dest's files, a symlink as "name -> target", with
// every modification time checked against want.
func treeFiles(t *testing.T, dest string, want time.Time) []string {
	t.Helper()
	var got []string
	filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dest, p)
		if !fi.ModTime().Equal(want) {
			t.Errorf("%s: modification time %s, want the commit's %s", rel, fi.ModTime(), want)
		}
		switch {
		case d.IsDir():
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			got = append(got, rel+" -> "+target)
		default:
			b, _ := os.ReadFile(p)
			got = append(got, rel+"="+string(b))
		}
		return nil
	})
	slices.Sort(got)
	return got
}

// TestCheckoutUpdatesWorkTreeInPlace checks out one commit after another
// into the same work tree: each time it holds exactly that commit's
// files, nothing of the ones before, and every time is the commit's.
func TestCheckoutUpdatesWorkTreeInPlace(t *testing.T) {
	dir := t.TempDir()
	git := func(args ...string) string { t.Helper(); return runGit(t, dir, nil, args...) }
	git("init", "-q", "-b", "main")
	type step struct {
		name  string
		apply func()
		want  []string
	}
	write := func(name, body string) {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	steps := []step{
		{"first", func() { write("a.txt", "a"); write("d/b.txt", "b"); write("d/e/c.txt", "c") },
			[]string{"a.txt=a", "d/b.txt=b", "d/e/c.txt=c"}},
		{"change one, add one", func() { write("a.txt", "A"); write("new.txt", "n") },
			[]string{"a.txt=A", "d/b.txt=b", "d/e/c.txt=c", "new.txt=n"}},
		{"remove a directory", func() { os.RemoveAll(filepath.Join(dir, "d/e")) },
			[]string{"a.txt=A", "d/b.txt=b", "new.txt=n"}},
		{"file becomes directory and symlink", func() {
			os.Remove(filepath.Join(dir, "new.txt"))
			write("new.txt/x", "x")
			os.Remove(filepath.Join(dir, "a.txt"))
			os.Symlink("d/b.txt", filepath.Join(dir, "a.txt"))
		}, []string{"a.txt -> d/b.txt", "d/b.txt=b", "new.txt/x=x"}},
		{"directory becomes file", func() { os.RemoveAll(filepath.Join(dir, "new.txt")); write("new.txt", "back") },
			[]string{"a.txt -> d/b.txt", "d/b.txt=b", "new.txt=back"}},
	}
	m, err := NewMirrors(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "lane")
	for i, s := range steps {
		s.apply()
		git("add", "-A")
		at := time.Date(2026, 1, 1+i, 10, 0, 0, 0, time.UTC)
		runGit(t, dir, []string{"GIT_COMMITTER_DATE=" + at.Format(time.RFC3339)}, "commit", "-q", "-m", s.name)
		head := git("rev-parse", "HEAD")
		if i == 3 {
			// Something wrote into the work tree since: it goes.
			os.WriteFile(filepath.Join(dest, "stray"), []byte("left by someone"), 0o644)
			os.MkdirAll(filepath.Join(dest, "d/stray-dir"), 0o755)
		}
		var log strings.Builder
		got, err := m.Checkout(context.Background(), Repo{URL: "file://" + dir}, "refs/heads/main", head, dest, &log)
		if err != nil {
			t.Fatalf("%s: Checkout: %v\n%s", s.name, err, log.String())
		}
		if got != head {
			t.Errorf("%s: tip %s, want %s", s.name, got, head)
		}
		if i > 0 && !strings.Contains(log.String(), "updating the work tree") {
			t.Errorf("%s: second and later checkouts should update in place, log:\n%s", s.name, log.String())
		}
		if diff := cmp.Diff(s.want, treeFiles(t, dest, at)); diff != "" {
			t.Errorf("%s: work tree (-want +got):\n%s", s.name, diff)
		}
	}
}

// TestCheckoutWithoutNoteStartsAfresh: a work tree whose note is missing
// (a checkout died half way) is written anew, leftovers gone.
func TestCheckoutWithoutNoteStartsAfresh(t *testing.T) {
	url, commit := gitRepo(t)
	head := commit(map[string]string{"a.txt": "a"})
	m, err := NewMirrors(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "lane")
	if _, err := m.Checkout(context.Background(), Repo{URL: url}, "refs/heads/main", head, dest, io.Discard); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dest, "half-written"), nil, 0o644)
	os.Remove(dest + ".commit")
	var log strings.Builder
	if _, err := m.Checkout(context.Background(), Repo{URL: url}, "refs/heads/main", head, dest, &log); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dest, "half-written")); !os.IsNotExist(err) {
		t.Errorf("a file of the interrupted checkout survived: %v", err)
	}
	if strings.Contains(log.String(), "updating the work tree") {
		t.Errorf("without its note the work tree must be written afresh, log:\n%s", log.String())
	}
}
