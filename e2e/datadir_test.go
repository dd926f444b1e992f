package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

// gatedGit serves a repository over HTTP and holds every request until
// the gate opens, so a job stays in its fetch, and so running, for as
// long as a test needs. arrived is closed when the first request waits.
type gatedGit struct {
	URL       string
	arrived   chan struct{}
	gate      chan struct{}
	arriveOne sync.Once
	openOne   sync.Once
}

func newGatedGit(t *testing.T, repo *testenv.GitRepo) *gatedGit {
	t.Helper()
	backend, err := url.Parse(testenv.ServeGit(t, repo, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedGit{arrived: make(chan struct{}), gate: make(chan struct{})}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: backend.Scheme, Host: backend.Host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.arriveOne.Do(func() { close(g.arrived) })
		select {
		case <-g.gate:
		case <-r.Context().Done():
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { g.open(); srv.Close() })
	g.URL = srv.URL + backend.Path
	return g
}

func (g *gatedGit) open() { g.openOne.Do(func() { close(g.gate) }) }

// waitFetch waits until a fetch is held at the gate.
func (g *gatedGit) waitFetch(t *testing.T) {
	t.Helper()
	select {
	case <-g.arrived:
	case <-time.After(time.Minute):
		t.Fatal("no fetch reached the Git server")
	}
}

// eventRecorder is a notification endpoint that keeps the events it is
// sent, per job.
type eventRecorder struct {
	mu     sync.Mutex
	events map[int64][]string
}

func newEventRecorder(t *testing.T) (*eventRecorder, string) {
	rec := &eventRecorder{events: map[int64][]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Event string
			Job   struct{ ID int64 }
		}
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &p)
		rec.mu.Lock()
		rec.events[p.Job.ID] = append(rec.events[p.Job.ID], p.Event)
		rec.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

func (r *eventRecorder) of(id int64) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events[id], ",")
}

// waitEvents waits until job id's events are exactly want.
func (r *eventRecorder) waitEvents(t *testing.T, id int64, want string) {
	t.Helper()
	testenv.Eventually(t, time.Minute, 50*time.Millisecond, func() (bool, string) {
		got := r.of(id)
		return got == want, fmt.Sprintf("job %d notified %q, want %q", id, got, want)
	})
}

// heldJob starts a swarmhook whose one project builds from a gated Git
// server and tells a notification endpoint of every event, pushes, and
// returns once the push's job runs (held in its fetch) and its start was
// notified.
func heldJob(t *testing.T) (*testenv.Swarmhook, *gatedGit, *eventRecorder, int64) {
	t.Helper()
	c := testenv.Require(t)
	ns := testenv.Unique("datadir")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	repo := testenv.NewGitRepo(t)
	git := newGatedGit(t, repo)
	rec, hook := newEventRecorder(t)
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - name: dd
    repo: %s
    secret: %s
    images: [{name: %s/web}]
    notify:
      webhooks: [{url: %q}]
      on: [started, success, failure, interrupted]
`, testenv.Registry(), git.URL, secret, ns, hook))
	commit := repo.Commit("v1", testenv.AppFiles(t, ns))
	code, body := sh.GitHubPush("dd", secret, testenv.GitHubPushBody("main", strings.Repeat("1", 40), commit, "v1"))
	if code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	var a struct{ Job int64 }
	json.Unmarshal(body, &a)
	git.waitFetch(t)
	rec.waitEvents(t, a.Job, "started")
	return sh, git, rec, a.Job
}

func jobStatus(t *testing.T, sh *testenv.Swarmhook, id int64) string {
	t.Helper()
	code, body := sh.API(http.MethodGet, fmt.Sprintf("/api/jobs/%d", id), nil)
	if code != http.StatusOK {
		t.Fatalf("job %d: %d %s", id, code, body)
	}
	var j testenv.Job
	json.Unmarshal(body, &j)
	return j.Status
}

// A second swarmhook (serve, or the prune command, which opens the same
// store) on a data_dir in use exits at once, naming the directory and the
// holder's PID, and leaves the first one's running job, records and
// notifications alone; a holder killed with SIGKILL leaves no lock behind.
func TestSecondServeOnOneDataDirIsRefused(t *testing.T) {
	t.Parallel()
	first, git, rec, id := heldJob(t)

	cfg, err := os.ReadFile(first.Config)
	if err != nil {
		t.Fatal(err)
	}
	otherPort := filepath.Join(t.TempDir(), "other-port.yaml")
	listen := "listen: " + strings.TrimPrefix(first.URL, "http://")
	if !strings.Contains(string(cfg), listen) {
		t.Fatalf("config lacks %q", listen)
	}
	other := strings.Replace(string(cfg), listen, fmt.Sprintf("listen: 127.0.0.1:%d", testenv.FreePort(t)), 1)
	if err := os.WriteFile(otherPort, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"serve on another port", []string{"serve", "-config", otherPort}},
		{"serve on the same config", []string{"serve", "-config", first.Config}},
		{"prune", []string{"prune", "-config", first.Config, "--dry-run"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first.SetT(t)
			code, out := first.RunCommand(tc.args...)
			if code == 0 {
				t.Errorf("second swarmhook exited 0:\n%s", out)
			}
			want := fmt.Sprintf("%s is in use by pid %d", first.DataDir, first.PID())
			if !strings.Contains(out, want) {
				t.Errorf("second swarmhook said %q, want it to say %q", out, want)
			}
			if strings.Contains(out, "interrupted") || strings.Contains(out, "swarmhook started") {
				t.Errorf("second swarmhook went on past the lock:\n%s", out)
			}
			if got := jobStatus(t, first, id); got != "running" {
				t.Errorf("first swarmhook's job is %s after the second start, want running", got)
			}
			if got := rec.of(id); got != "started" {
				t.Errorf("job %d notified %q after the second start, want only started", id, got)
			}
		})
	}
	first.SetT(t)

	git.open()
	if j, log := first.WaitJob(id, 3*time.Minute); j.Status != "succeeded" {
		t.Fatalf("first swarmhook's job: %s %s\n%s", j.Status, j.Error, log)
	}
	rec.waitEvents(t, id, "started,success")
	if out := first.Output(); strings.Contains(out, "constraint failed") {
		t.Errorf("first swarmhook's writes collided:\n%s", out)
	}

	// The kernel drops the lock of a killed process: a new one starts.
	first.Kill()
	first.Restart()
	if got := jobStatus(t, first, id); got != "succeeded" {
		t.Errorf("job after kill and restart is %s, want succeeded", got)
	}
}

// A swarmhook whose port is taken exits before it recovers any job: the
// job a killed process left running stays running, unannounced, with its
// work tree, until a start that gets its port marks it interrupted and
// removes the tree, and nothing else in the data directory.
func TestBusyPortFailsBeforeRecoveringJobs(t *testing.T) {
	t.Parallel()
	sh, _, rec, id := heldJob(t)
	sh.Kill()

	// The job was killed fetching, before its lane's work tree was
	// written: one left by an earlier job of the lane stands in for it.
	tree := filepath.Join(sh.DataDir, "work", "0123456789abcdef01234567")
	// A leftover as big jobs leave them: files, nested.
	testenv.WriteFiles(t, tree, map[string]string{"node_modules/left/over.js": strings.Repeat("x", 1<<20), "Dockerfile": "FROM scratch\n"})
	mirrors, err := os.ReadDir(filepath.Join(sh.DataDir, "mirrors"))
	if err != nil || len(mirrors) == 0 {
		t.Fatalf("no Git mirror in the data dir: %v", err)
	}

	addr := strings.TrimPrefix(sh.URL, "http://")
	squatter, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("take the port: %v", err)
	}
	code, out := sh.RunCommand("serve", "-config", sh.Config)
	squatter.Close()
	if code == 0 {
		t.Errorf("swarmhook exited 0 with its port taken:\n%s", out)
	}
	if !strings.Contains(out, addr) || !strings.Contains(out, "address already in use") {
		t.Errorf("swarmhook said %q, want the address %s in use", out, addr)
	}
	if strings.Contains(out, "interrupted") || strings.Contains(out, "swarmhook started") {
		t.Errorf("swarmhook went on past its port:\n%s", out)
	}
	if got := rec.of(id); got != "started" {
		t.Errorf("job %d notified %q by a start that had no port, want only started", id, got)
	}
	if _, err := os.Stat(tree); err != nil {
		t.Errorf("a start that had no port touched the work tree: %v", err)
	}

	sh.Restart()
	if got := jobStatus(t, sh, id); got != "interrupted" {
		t.Errorf("killed job after a full start is %s, want interrupted", got)
	}
	rec.waitEvents(t, id, "started,interrupted")
	work, err := os.ReadDir(filepath.Join(sh.DataDir, "work"))
	if err != nil || len(work) != 0 {
		t.Errorf("work/ after start-up: %v %v, want empty", work, err)
	}
	for _, m := range mirrors {
		if _, err := os.Stat(filepath.Join(sh.DataDir, "mirrors", m.Name())); err != nil {
			t.Errorf("mirror %s removed at start-up: %v", m.Name(), err)
		}
	}
}

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
	gate := newGatedGit(t, repo)
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - name: full
    repo: %s
    secret: %s
    images: [{name: %s/app}]
`, testenv.Registry(), gate.URL, secret, testenv.Unique("full")))
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
	gate.waitFetch(t) // the job runs, and waits in its fetch
	free := testenv.Fill(t, sh.DataDir)

	// Pushes go on into space SQLite's WAL already holds until one needs
	// more.
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
	gate.open()
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

// TestADamagedDatabaseStopsTheStart starts swarmhook again on its
// data_dir once its database is empty or not a database: it must refuse,
// naming the file, rather than serve an empty history or fail every
// webhook.
func TestADamagedDatabaseStopsTheStart(t *testing.T) {
	t.Parallel()
	testenv.Require(t)
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - name: shop
    repo: file:///nowhere
    secret: %s
    images: [{name: shop/app}]
`, testenv.Registry(), secret))
	sh.Stop()
	db := filepath.Join(sh.DataDir, "swarmhook.db")
	for _, tc := range []struct {
		name    string
		content string
		want    string
	}{
		{"zero length", "", "delete it to start with an empty history"},
		{"not a database", strings.Repeat("swarmhook ", 1000), "restore it from a backup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh.SetT(t)
			if err := os.WriteFile(db, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out := sh.RunCommand("serve", "-config", sh.Config)
			if code == 0 || !strings.Contains(out, db) || !strings.Contains(out, tc.want) {
				t.Errorf("start on a damaged database: exit %d\n%s\nwant a refusal naming %s and saying %q", code, out, db, tc.want)
			}
			if strings.Contains(out, "swarmhook started") {
				t.Errorf("swarmhook served on a damaged database:\n%s", out)
			}
			if got, _ := os.ReadFile(db); string(got) != tc.content {
				t.Error("the refused database was changed")
			}
		})
	}
}
