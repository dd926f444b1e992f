package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/server"
	"github.com/swarmhook/swarmhook/store"
	"github.com/swarmhook/swarmhook/webhook"
)

// recordOnly is a Submitter that records each job in the store, as the
// runner does, and runs none: the ceiling of intake itself, without the
// runner's work competing for the store and the cores.
type recordOnly struct{ s *store.SQLite }

func (r recordOnly) Submit(ctx context.Context, req job.Request) (*job.Job, error) {
	j := &job.Job{Project: req.Project, Trigger: req.Trigger, Status: job.Queued, Ref: req.Ref, Branch: req.Branch,
		Commit: req.Commit, DeliveryID: req.DeliveryID, Who: req.Who}
	if err := r.s.Create(ctx, j, req.Delivery); err != nil {
		return nil, err
	}
	return j, nil
}

// Waiting knows no waiting build: recordOnly queues none.
func (recordOnly) Waiting(int64) (*job.Job, bool) { return nil, false }

// intakeParallelism is how many requests per core the benchmark keeps in
// flight: 32 on 2 cores, the load generator's 64 connections.
const intakeParallelism = 32

// BenchmarkIntakeHandler measures one signed GitHub push through the
// real handler and the real SQLite store (redelivery check, job record,
// delivery record), in process, on every core.
func BenchmarkIntakeHandler(b *testing.B) {
	cfg, err := config.Load(strings.NewReader(`
registry: {host: "127.0.0.1:5000"}
projects: [{name: bench, repo: "http://127.0.0.1:9/x.git", secret: s, images: [{name: bench/app}]}]`),
		func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "swarmhook.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	srv := server.New(server.Deps{Config: cfg, Jobs: recordOnly{st}, Deliveries: st, Log: zerolog.Nop()})
	var n atomic.Int64
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.Cleanup(func() {
		// CPU per delivery holds still when other work on the machine
		// takes cores away, where ns/op does not.
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	})
	// As many requests in flight as the load generator's connections.
	b.SetParallelism(intakeParallelism)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body, _ := json.Marshal(map[string]any{"ref": fmt.Sprintf("refs/heads/bench-%d", i%8),
				"after": "a10867b14bb761a232cd80139fbd4c0d33264240", "pusher": map[string]string{"name": "bench"}})
			req := httptest.NewRequest(http.MethodPost, "/hooks/bench", bytes.NewReader(body))
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprint("bench-", i))
			req.Header.Set("X-Hub-Signature-256", webhook.Sign("s", body))
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusAccepted {
				b.Fatalf("answer %d %s", rec.Code, rec.Body)
			}
		}
	})
}

// cpuTime is the CPU (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
