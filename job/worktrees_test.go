package job

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// A process killed mid-job leaves the job's work tree behind; the next
// start removes it, and every other leftover under work/, but nothing
// beside work/ in the data directory.
func TestResumeRemovesLeftoverWorkTrees(t *testing.T) {
	rec := newRecorder()
	ctx := context.Background()
	killed := &Job{Project: "shop", Action: ActionBuild, Status: Running, Branch: "main", Ref: "refs/heads/main", Commit: "c1"}
	rec.Create(ctx, killed, nil)
	r := newTestRunner(t, rec, 1)
	data := r.cfg.DataDir

	write := func(rel, content string) {
		t.Helper()
		path := filepath.Join(data, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("work/1/Dockerfile", "FROM scratch\n")
	write("work/1/src/deep/main.go", "package main\n")
	write("work/41/app", "a finished job's tree its process had no time to remove\n")
	write("work/stray", "not a tree at all\n")
	write("mirrors/0123abcd/HEAD", "ref: refs/heads/main\n")
	write("logs/1.log", "job 1\n")

	r.Start(ctx)
	if err := r.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	r.Shutdown(ctx)

	entries, err := os.ReadDir(filepath.Join(data, "work"))
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if len(left) != 0 {
		t.Errorf("work/ after start-up holds %v, want nothing", left)
	}
	for _, keep := range []string{"mirrors/0123abcd/HEAD", "logs/1.log"} {
		if _, err := os.Stat(filepath.Join(data, keep)); err != nil {
			t.Errorf("%s beside work/ was touched: %v", keep, err)
		}
	}
	if got := rec.job(killed.ID).Status; got != Interrupted {
		t.Errorf("killed job is %s, want interrupted", got)
	}
}

func TestResumeWithoutWorkDir(t *testing.T) {
	rec := newRecorder()
	r := newTestRunner(t, rec, 1)
	ctx := context.Background()
	r.Start(ctx)
	defer r.Shutdown(ctx)
	if err := r.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.cfg.DataDir, "work")); !os.IsNotExist(err) {
		t.Errorf("Resume created work/ with nothing to put in it: %v", err)
	}
}
