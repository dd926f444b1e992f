package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

// gitGate stands between swarmhook and a Git server and holds every
// request until the test opens it, so a job waits in its fetch for as
// long as the test needs.
type gitGate struct {
	url     string
	arrived chan struct{} // closed at the first request
	open    chan struct{}
	once    sync.Once
}

func newGitGate(t *testing.T, target string) *gitGate {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &gitGate{arrived: make(chan struct{}), open: make(chan struct{})}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	var first sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first.Do(func() { close(g.arrived) })
		select {
		case <-g.open:
		case <-r.Context().Done():
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { g.release(); srv.Close() })
	g.url = srv.URL + u.Path
	return g
}

func (g *gitGate) release() { g.once.Do(func() { close(g.open) }) }

// TestAFullDataDir fills swarmhook's data_dir, a small tmpfs, while a job
// runs: webhooks are refused with 503 saying data_dir is full, /readyz
// says the same, and the job's end, which cannot be saved, is saved once
// space returns, which also ends a follower of its log.
func TestAFullDataDir(t *testing.T) {
	testenv.Require(t)
	repo := testenv.NewGitRepo(t)
	// Any build fails at once: the test is about the store, not images.
	files := map[string]string{"Dockerfile": "FROM scratch\nCOPY missing /x\n", "version.txt": "full"}
	commit := repo.Commit("v1", files)
	gate := newGitGate(t, testenv.ServeGit(t, repo, "", ""))
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - name: full
    repo: %s
    secret: %s
    images: [{name: %s/app}]
`, testenv.Registry(), gate.url, secret, testenv.Unique("full")))
	// Started again on an empty tmpfs of its own.
	sh.Stop()
	if err := os.RemoveAll(sh.DataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(sh.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	testenv.MountTmpfs(t, sh.DataDir, 16<<20)
	sh.Restart()

	push := func(commit string) (int, []byte) {
		return sh.GitHubPush("full", secret, testenv.GitHubPushBody("main", strings.Repeat("0", 40), commit, "full"))
	}
	code, body := push(commit)
	if code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	var a struct{ Job int64 }
	json.Unmarshal(body, &a)
	select {
	case <-gate.arrived: // the job runs, and waits in its fetch
	case <-time.After(time.Minute):
		t.Fatal("the job never fetched")
	}
	free := testenv.Fill(t, sh.DataDir)

	// Pushes go on into space SQLite's WAL and the join log already hold
	// until one needs more.
	code = http.StatusAccepted
	for i := 0; code == http.StatusAccepted && i < 200; i++ {
		code, body = push(fmt.Sprintf("%040x", i+1))
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "data_dir full") {
		t.Errorf("push to a full data_dir: %d %s, want 503 saying data_dir full", code, body)
	}
	code, body = sh.Do(http.MethodGet, "/readyz", nil, nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "data_dir full") {
		t.Errorf("/readyz with data_dir full: %d %s, want 503 saying data_dir full", code, body)
	}

	// A follower of the job's log, which must end with the job.
	followed := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/jobs/%d/log?follow=1", sh.URL, a.Job), nil)
		req.Header.Set("Authorization", "Bearer "+sh.Token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		followed <- err
	}()
	// The fetch has no room either: the job fails, and its end cannot
	// be saved.
	gate.release()
	// (Builds of main run one at a time: only this job can have ended.)
	testenv.Eventually(t, 2*time.Minute, 100*time.Millisecond, func() (bool, string) {
		return strings.Contains(sh.Output(), "job's end not saved"), "no failed save of the job's end logged"
	})
	if code, body := sh.API(http.MethodGet, fmt.Sprintf("/api/jobs/%d", a.Job), nil); code != http.StatusOK || !strings.Contains(string(body), `"status":"running"`) {
		t.Fatalf("job while its end is unsaved: %d %s, want running", code, body)
	}

	free()
	select {
	case err := <-followed:
		if err != nil {
			t.Errorf("follower: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the follower of the job's log did not end once space returned")
	}
	j, _ := sh.WaitJob(a.Job, time.Minute)
	if j.Status != "failed" {
		t.Errorf("job %s once space returned, want failed (its fetch had no room): %s", j.Status, j.Error)
	}
	testenv.Eventually(t, time.Minute, 200*time.Millisecond, func() (bool, string) {
		code, body := sh.Do(http.MethodGet, "/readyz", nil, nil)
		return code == http.StatusOK, fmt.Sprintf("/readyz: %d %s", code, body)
	})
}

// TestADamagedDatabaseStopsTheStart starts swarmhook on a data_dir whose
// database is empty or not a database: it must refuse, naming the file,
// rather than serve an empty history or fail every webhook.
func TestADamagedDatabaseStopsTheStart(t *testing.T) {
	bin := testenv.GoBinary(t, "./cmd/swarmhook")
	for _, tc := range []struct {
		name    string
		content string
		want    string
	}{
		{"zero length", "", "delete it to start with an empty history"},
		{"not a database", strings.Repeat("swarmhook ", 1000), "restore it from a backup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "data", "swarmhook.db")
			if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(db, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
listen: 127.0.0.1:%d
data_dir: %s
registry: {host: %q, insecure: true}
projects:
  - name: shop
    repo: file:///nowhere
    secret: %s
    images: [{name: shop/app}]
`, testenv.FreePort(t), filepath.Dir(db), testenv.Registry(), secret)), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "serve", "-config", cfg).CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("swarmhook served on a damaged database:\n%s", out)
			}
			if err == nil || !strings.Contains(string(out), db) || !strings.Contains(string(out), tc.want) {
				t.Errorf("start on a damaged database: %v\n%s\nwant a refusal naming %s and saying %q", err, out, db, tc.want)
			}
			if got, _ := os.ReadFile(db); string(got) != tc.content {
				t.Error("the refused database was changed")
			}
		})
	}
}
