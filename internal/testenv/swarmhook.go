package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/webhook"
)

// Swarmhook is a swarmhook process the test started from the real binary.
type Swarmhook struct {
	// URL is http://127.0.0.1:PORT.
	URL string
	// DataDir is its data directory.
	DataDir string
	// Token is an admin API token it was configured with.
	Token string
	// Config is the path of its config file.
	Config string

	t      testing.TB
	args   []string
	cmd    *exec.Cmd
	output *lockedBuffer
	done   chan struct{}
}

// Tokens StartSwarmhook adds to every config.
const (
	AdminToken = "test-admin-token-0123456789"
	ReadToken  = "test-read-token-0123456789"
)

// StartSwarmhook runs swarmhook serve with the given config body (without
// listen, data_dir and tokens, which it adds) and waits until it answers.
// It is stopped with SIGTERM when the test ends.
func StartSwarmhook(t testing.TB, configBody string) *Swarmhook {
	t.Helper()
	bin := GoBinary(t, "./cmd/swarmhook")
	dir := t.TempDir()
	port := FreePort(t)
	cfg := fmt.Sprintf("listen: 127.0.0.1:%d\ndata_dir: %s\ntokens:\n  - {name: tester, token: %s, scopes: [admin]}\n  - {name: reader, token: %s, scopes: [read]}\n%s",
		port, filepath.Join(dir, "data"), AdminToken, ReadToken, configBody)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Swarmhook{URL: fmt.Sprintf("http://127.0.0.1:%d", port), DataDir: filepath.Join(dir, "data"), Token: AdminToken, Config: path,
		t: t, output: &lockedBuffer{}, args: []string{bin, "serve", "-config", path, "-log-format", "console"}}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("swarmhook output:\n%s", TrimLines(s.output.String(), 80))
		}
	})
	s.start()
	return s
}

// start runs the process and waits until it answers.
func (s *Swarmhook) start() {
	t := s.t
	t.Helper()
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Stdout, cmd.Stderr = s.output, s.output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(s.done)
	Eventually(t, 20*time.Second, 50*time.Millisecond, func() (bool, string) {
		select {
		case <-s.done:
			t.Fatalf("swarmhook exited at start:\n%s", s.output.String())
		default:
		}
		resp, err := http.Get(s.URL + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

// Restart stops the process with SIGTERM and starts it again on the same
// config, port and data directory, as an operator's restart would.
func (s *Swarmhook) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// SetT lets a test drive a swarmhook it did not start (one running as a
// Swarm service) with the same helpers.
func (s *Swarmhook) SetT(t testing.TB) { s.t = t }

// Kill ends the process with SIGKILL, as a crash or an OOM kill would,
// and waits for it; Restart starts it again.
func (s *Swarmhook) Kill() {
	s.cmd.Process.Kill()
	<-s.done
}

// Stop sends SIGTERM and waits for the process to exit.
func (s *Swarmhook) Stop() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(40 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// PID is the process id of the running process.
func (s *Swarmhook) PID() int { return s.cmd.Process.Pid }

// Exited is closed when the process has exited, whoever ended it.
func (s *Swarmhook) Exited() <-chan struct{} { return s.done }

// RunCommand runs the swarmhook binary with args (say serve -config
// another.yaml, as a second process would) and waits for it to exit, as a
// process refused at start-up does. It returns the exit code and what the
// process printed. A process still running after a minute is killed and
// fails the test.
func (s *Swarmhook) RunCommand(args ...string) (int, string) {
	s.t.Helper()
	out := &lockedBuffer{}
	cmd := exec.Command(s.args[0], args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		s.t.Fatalf("swarmhook %s was still running after a minute:\n%s", strings.Join(args, " "), TrimLines(out.String(), 40))
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// Output is everything the process logged so far.
func (s *Swarmhook) Output() string { return s.output.String() }

// Do sends a request and returns the status and body.
func (s *Swarmhook) Do(method, path string, header http.Header, body []byte) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// API sends an authenticated API request.
func (s *Swarmhook) API(method, path string, body []byte) (int, []byte) {
	s.t.Helper()
	return s.Do(method, path, http.Header{"Authorization": {"Bearer " + s.Token}}, body)
}

// GitHubPush posts a GitHub push delivery signed with secret.
func (s *Swarmhook) GitHubPush(project, secret string, body []byte) (int, []byte) {
	s.t.Helper()
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-GitHub-Event", "push")
	h.Set("X-GitHub-Delivery", Unique("delivery-"))
	h.Set("X-Hub-Signature-256", webhook.Sign(secret, body))
	return s.Do(http.MethodPost, "/hooks/"+project, h, body)
}

// PushApp commits the test app at version on branch of repo (failing its
// health check when broken), sends the signed GitHub push to project and
// waits for the job it queued to end. It returns the job and its log.
func (s *Swarmhook) PushApp(repo *GitRepo, project, secret, branch, version string, broken bool) (Job, string) {
	s.t.Helper()
	repo.Git("checkout", "-q", "-B", branch)
	files := AppFiles(s.t, version)
	files["Dockerfile"] = HealthyDockerfile
	if broken {
		files["Dockerfile"] = UnhealthyDockerfile
	}
	commit := repo.Commit(version, files)
	code, body := s.GitHubPush(project, secret, GitHubPushBody(branch, strings.Repeat("1", 40), commit, version))
	var a struct{ Job int64 }
	if code != http.StatusAccepted || json.Unmarshal(body, &a) != nil || a.Job == 0 {
		s.t.Fatalf("push to %s: %d %s, want 202 with a job", branch, code, body)
	}
	return s.WaitJob(a.Job, 4*time.Minute)
}

// Job is the part of a job record tests look at.
type Job struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
	Commit string `json:"commit"`
	Error  string `json:"error"`
	// Pushes counts the pushes a build stands for (job.Job.Pushes).
	Pushes int `json:"pushes"`
	// Engine is the build engine of docker.builders the job used.
	Engine string `json:"engine"`
	Images []struct {
		Name      string `json:"name"`
		Tag       string `json:"tag"`
		LatestTag string `json:"latest_tag"`
		Digest    string `json:"digest"`
		Ref       string `json:"ref"`
	} `json:"images"`
	Services []struct {
		Service, Outcome, Image, Message string
		Started, Finished                time.Time
	} `json:"services"`
	Stages []struct {
		Name string
		Ms   int64
	} `json:"stages"`
}

// WaitJob polls the job until it ends and returns it with its log.
func (s *Swarmhook) WaitJob(id int64, timeout time.Duration) (Job, string) {
	s.t.Helper()
	var j Job
	Eventually(s.t, timeout, 200*time.Millisecond, func() (bool, string) {
		code, body := s.API(http.MethodGet, fmt.Sprintf("/api/jobs/%d", id), nil)
		if code != http.StatusOK {
			return false, fmt.Sprintf("GET job %d: %d %s", id, code, body)
		}
		if err := json.Unmarshal(body, &j); err != nil {
			s.t.Fatal(err)
		}
		return j.Status != "queued" && j.Status != "running", "job is " + j.Status
	})
	_, log := s.API(http.MethodGet, fmt.Sprintf("/api/jobs/%d/log", id), nil)
	return j, string(log)
}

// GitHubPushBody is a push payload in GitHub's format.
func GitHubPushBody(branch, before, after, message string) []byte {
	b, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/" + branch, "before": before, "after": after,
		"created": false, "deleted": false, "forced": false,
		"repository":  map[string]any{"name": "app", "full_name": "team/app", "clone_url": "https://git.example.com/team/app.git"},
		"pusher":      map[string]any{"name": "tess", "email": "t@example.com"},
		"head_commit": map[string]any{"id": after, "message": message},
		"commits":     []any{map[string]any{"id": after, "message": message}},
	})
	return b
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
