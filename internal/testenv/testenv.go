// Package testenv gives tests the real parts swarmhook drives: the Docker
// engine, the registry on 127.0.0.1:5000 and the Swarm (three nodes: see
// nodes.go), as started by scripts/infra.sh. It also builds the test app
// and swarmhook itself, and makes Git repositories for tests to push to.
//
// When a part is missing, tests are skipped on a developer's machine and
// fail under CI=true: CI never passes by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

// Registry is the test registry's host:port.
func Registry() string {
	if r := os.Getenv("SWARMHOOK_TEST_REGISTRY"); r != "" {
		return r
	}
	return "127.0.0.1:5000"
}

var (
	checkOnce sync.Once
	checkErr  error
	dockerCli *client.Client
)

// Require returns a client for the real engine after checking that the
// engine, the registry and Swarm all answer. Without them the test is
// skipped, or fails when CI=true.
func Require(t testing.TB) *client.Client {
	t.Helper()
	checkOnce.Do(func() { dockerCli, checkErr = check() })
	if checkErr != nil {
		msg := fmt.Sprintf("real engine, registry and Swarm needed (run scripts/infra.sh): %v", checkErr)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dockerCli
}

func check() (*client.Client, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := c.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker engine: %w", err)
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateActive || !info.Swarm.ControlAvailable {
		return nil, fmt.Errorf("swarm: node is %q, not an active manager", info.Swarm.LocalNodeState)
	}
	resp, err := http.Get("http://" + Registry() + "/v2/")
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	resp.Body.Close()
	return c, nil
}

// Unique returns a short random name with prefix, so parallel and repeated
// runs never share services, images or repositories.
func Unique(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// RepoRoot is the swarmhook module's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var builds sync.Map // package path -> *buildResult

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// GoBinary builds a static binary of the package at pkg (relative to the
// module root, e.g. "./cmd/swarmhook") once per test process.
func GoBinary(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &buildResult{})
	b := v.(*buildResult)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "swarmhook-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-trimpath", "-o", b.path, pkg)
		cmd.Dir = RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// FreePort returns a TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Eventually polls cond every interval until it returns true or timeout
// passes, then fails the test with what cond last said.
func Eventually(t testing.TB, timeout, interval time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s: %s", timeout, why)
		}
		time.Sleep(interval)
	}
}

// TrimLines shortens s to its last n lines, for failure messages.
func TrimLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
