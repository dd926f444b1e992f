package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// WorkerRegistry is the test registry as the worker engines of
// scripts/infra.sh reach it (the host's side of their bridge); the host's
// engine trusts it too. An image built on a worker goes to the registry
// through this address, so swarmhook's registry.host must be it.
const WorkerRegistry = "10.213.0.1:5000"

// WorkerEngines are the sockets of the worker engines scripts/infra.sh
// runs in network namespaces of their own: build engines for tests of
// docker.builders.
var WorkerEngines = []string{"unix:///run/swh-node2/docker.sock", "unix:///run/swh-node3/docker.sock"}

// RequireWorkerEngine returns the host of a worker engine that answers.
// Without one the test is skipped, or fails when CI=true.
func RequireWorkerEngine(t testing.TB) string {
	t.Helper()
	Require(t)
	var errs []error
	for _, h := range WorkerEngines {
		if err := ping(h); err != nil {
			errs = append(errs, err)
			continue
		}
		return h
	}
	msg := fmt.Sprintf("a worker engine is needed (run scripts/infra.sh): %v", errs)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func ping(host string) error {
	c, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.Ping(ctx)
	return err
}

// Engine is a dockerd a test started for itself and may kill.
type Engine struct {
	// Host is its socket, as DOCKER_HOST takes it.
	Host string
	// PID is its process ID.
	PID int
	cmd *exec.Cmd
}

// StartEngine starts a dockerd for t alone: its own data root, exec root,
// pid file, socket and config file, in network and mount namespaces of
// its own (unshare --net --mount, which unlike ip netns exec leaves /sys
// and the cgroups alone) with --bridge=none and --iptables=false, so it
// touches neither the host's docker0 nor its firewall, and the mounts it
// makes go when it is killed. It has no network: it can build
// from scratch, not pull. It is killed and its files removed when the
// test ends.
func StartEngine(t testing.TB) *Engine {
	t.Helper()
	name := Unique("swh-e2e-engine")
	run := filepath.Join("/run", name)
	root := filepath.Join("/var/lib", name)
	if err := os.MkdirAll(run, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(run, "daemon.json")
	if err := os.WriteFile(conf, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(run, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{Host: "unix://" + filepath.Join(run, "docker.sock")}
	e.cmd = exec.Command("unshare", "--net", "--mount", "/usr/sbin/dockerd",
		"--config-file", conf, "--data-root", root, "--exec-root", filepath.Join(run, "exec"),
		"--pidfile", filepath.Join(run, "docker.pid"), "-H", e.Host,
		"--bridge=none", "--iptables=false", "--ip-masq=false")
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	e.PID = e.cmd.Process.Pid // unshare execs dockerd: the same process
	done := make(chan struct{})
	go func() { e.cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		e.cmd.Process.Kill()
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("throwaway dockerd log:\n%s", TrimLines(string(b), 30))
		}
		os.RemoveAll(root)
		os.RemoveAll(run)
	})
	Eventually(t, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("dockerd exited at start:\n%s", TrimLines(string(b), 30))
		default:
		}
		if err := ping(e.Host); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	return e
}

// Kill stops the engine with SIGKILL by its PID, as a build machine that
// dies, and waits until it is gone.
func (e *Engine) Kill(t testing.TB) {
	t.Helper()
	if err := syscall.Kill(e.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill dockerd %d: %v", e.PID, err)
	}
	Eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		return ping(e.Host) != nil, "dockerd still answers"
	})
}
