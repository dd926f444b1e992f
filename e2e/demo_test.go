package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

// scripts/demo.sh stop ends the swarmhook whose PID the demo wrote, only
// while that PID is still swarmhook serving the demo's config: never a
// process that took the PID over, never another swarmhook.
func TestDemoStopEndsOnlyTheDemosSwarmhook(t *testing.T) {
	demo := testenv.StartSwarmhook(t, "")
	other := testenv.StartSwarmhook(t, "")
	demoDir := filepath.Dir(demo.Config) // the demo's config is $DEMO_DIR/config.yaml
	pidfile := filepath.Join(demoDir, "swarmhook.pid")

	// A process that has taken over a stale PID, and whose command line
	// pkill -f 'bin/swarmhook serve' would match.
	stranger := exec.Command("/bin/sh", "-c", "read _", "bin/swarmhook", "serve", "-config", demo.Config)
	stdin, err := stranger.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); stranger.Wait() })

	// Everything the demo proper runs fails loudly here: stop must run
	// none of it (and a stop that did could not touch the shared engine).
	shims := t.TempDir()
	for _, name := range []string{"bash", "docker", "go", "git", "curl", "pkill"} {
		testenv.WriteFiles(t, shims, map[string]string{name: "#!/bin/sh\necho \"demo.sh stop ran " + name + "\" >&2\nexit 97\n"})
		os.Chmod(filepath.Join(shims, name), 0o755)
	}
	stop := func(t *testing.T) (int, string) {
		t.Helper()
		cmd := exec.Command("/bin/bash", "scripts/demo.sh", "stop")
		cmd.Dir = testenv.RepoRoot()
		cmd.Env = append(os.Environ(), "DEMO_DIR="+demoDir, "PATH="+shims+":"+os.Getenv("PATH"))
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	alive := func(t *testing.T, name string, sh *testenv.Swarmhook) {
		t.Helper()
		sh.SetT(t)
		if code, body := sh.Do(http.MethodGet, "/healthz", nil, nil); code != http.StatusOK {
			t.Errorf("%s swarmhook after demo.sh stop: %d %s", name, code, body)
		}
	}

	t.Run("a pid that is no longer swarmhook", func(t *testing.T) {
		os.WriteFile(pidfile, []byte(strconv.Itoa(stranger.Process.Pid)+"\n"), 0o600)
		code, out := stop(t)
		if code != 0 || !strings.Contains(out, "nothing stopped") {
			t.Errorf("demo.sh stop exited %d: %s", code, out)
		}
		if err := stranger.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("demo.sh stop ended pid %d, which is not the demo's swarmhook: %v", stranger.Process.Pid, err)
		}
		alive(t, "the demo's", demo)
		alive(t, "another", other)
	})

	t.Run("the demo's swarmhook", func(t *testing.T) {
		os.WriteFile(pidfile, []byte(strconv.Itoa(demo.PID())+"\n"), 0o600)
		code, out := stop(t)
		if code != 0 || !strings.Contains(out, "stopped swarmhook (pid "+strconv.Itoa(demo.PID())+")") {
			t.Fatalf("demo.sh stop exited %d: %s", code, out)
		}
		select {
		case <-demo.Exited():
		case <-time.After(time.Minute):
			t.Fatal("the demo's swarmhook still runs after demo.sh stop")
		}
		if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
			t.Errorf("pid file left after stop: %v", err)
		}
		if err := stranger.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("demo.sh stop ended pid %d too: %v", stranger.Process.Pid, err)
		}
		alive(t, "another", other)
	})

	t.Run("nothing to stop", func(t *testing.T) {
		if code, out := stop(t); code != 0 || !strings.Contains(out, "no demo swarmhook") {
			t.Errorf("demo.sh stop without a pid file exited %d: %s", code, out)
		}
	})
}
