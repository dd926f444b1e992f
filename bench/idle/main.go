// Command idle seeds a swarmhook data directory with a job history for
// the idle-memory benchmark: -jobs finished build jobs of one project,
// each with stages, images, per-service outcomes and a log of -log-lines
// lines, as a busy month of deploys would leave them.
//
// bench/idle/run.sh seeds, starts swarmhook on the result, reads the job
// list through the API and measures the process's resident memory;
// bench/README.md has the commands and results.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/swarmhook/swarmhook/imageref"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
	"github.com/swarmhook/swarmhook/updater"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "idle:", err)
		os.Exit(1)
	}
}

func run() error {
	dataDir := flag.String("data", "", "swarmhook data_dir to seed")
	n := flag.Int("jobs", 1000, "jobs to record")
	lines := flag.Int("log-lines", 200, "lines in each job's log")
	flag.Parse()
	if *dataDir == "" {
		return fmt.Errorf("-data is required")
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, filepath.Join(*dataDir, "swarmhook.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	logs, err := store.NewLogDir(filepath.Join(*dataDir, "logs"))
	if err != nil {
		return err
	}
	// Recent enough that retention (90 days by default) keeps them all.
	start := time.Now().UTC().Add(-time.Duration(*n) * time.Minute)
	for i := 0; i < *n; i++ {
		if err := seed(ctx, db, logs, i, start.Add(time.Duration(i)*time.Minute), *lines); err != nil {
			return fmt.Errorf("job %d: %w", i, err)
		}
	}
	fmt.Printf("seeded %d jobs with %d-line logs into %s\n", *n, *lines, *dataDir)
	return nil
}

func seed(ctx context.Context, db *store.SQLite, logs *store.LogDir, i int, at time.Time, lines int) error {
	commit := randomHex(20)
	branch := []string{"main", "develop", "feature/search"}[i%3]
	status := job.Succeeded
	if i%10 == 0 {
		status = job.Failed
	}
	j := &job.Job{Project: "bench", Action: job.ActionBuild, Trigger: job.TriggerPush, Status: job.Queued,
		Ref: "refs/heads/" + branch, Branch: branch, Commit: commit, DeliveryID: randomHex(16),
		Who: "dev" + fmt.Sprint(i%7), Created: at}
	if err := db.Create(ctx, j, nil); err != nil {
		return err
	}
	j.Status, j.Started, j.Finished = status, at.Add(time.Second), at.Add(95*time.Second)
	t := j.Started
	for _, name := range []string{"fetch", "build", "push", "tag", "deploy bench_api", "deploy bench_web"} {
		j.Stages = append(j.Stages, job.Stage{Name: name, Started: t, Finished: t.Add(15 * time.Second), Millis: 15000})
		t = t.Add(15 * time.Second)
	}
	tag := "main-" + at.Format("20060102T150405Z")
	for _, img := range []string{"bench/api", "bench/web"} {
		digest := "sha256:" + randomHex(32)
		j.Images = append(j.Images, job.Image{Name: img, Tag: tag, LatestTag: branch + "-latest", Digest: digest,
			Ref: imageref.Pinned(imageref.Tagged("127.0.0.1:5000", img, tag), digest)})
	}
	for _, svc := range []string{"bench_api", "bench_web"} {
		j.Services = append(j.Services, updater.Result{Service: svc, Outcome: updater.Updated,
			Image: j.Images[0].Ref, Previous: "127.0.0.1:5000/bench/api:old@sha256:" + randomHex(32)})
	}
	if status == job.Failed {
		j.Error = "deploy bench_web: service did not converge within 10m0s"
	}
	if err := db.Save(ctx, j); err != nil {
		return err
	}
	w, err := logs.Create(j.ID)
	if err != nil {
		return err
	}
	for k := 0; k < lines; k++ {
		fmt.Fprintf(w, "Step %d/%d : RUN go build -trimpath -o /out/app ./cmd/app # layer %s\n", k, lines, randomHex(6))
	}
	return w.Close()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
