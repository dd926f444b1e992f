package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

// The multi-node test Swarm of scripts/nodes.sh: this host's engine is the
// manager, and two more engines, each in a network namespace of its own on
// the bridge swh-br0, are workers. Keep these in step with that script.
const (
	// BridgeAddr is the host's address on the nodes' bridge: the manager's
	// Swarm address and where workers reach the host's registries.
	BridgeAddr = "10.213.0.1"
	// NodeRegistry is the test registry as every node reaches it: a second
	// docker-registry process serving the storage of 127.0.0.1:5000. All
	// engines trust 10.213.0.0/24 as insecure (plain HTTP) registries.
	NodeRegistry = BridgeAddr + ":5000"
	// WorkerLabel is the node label every worker carries, with value
	// "worker": constrain a service with WorkersOnly to keep it off the
	// manager.
	WorkerLabel = "swarmhook.test.node"
	// WorkersOnly is the placement constraint that puts a service's tasks
	// on the worker nodes only.
	WorkersOnly = "node.labels." + WorkerLabel + "==worker"
)

// Worker is one worker node's engine.
type Worker struct {
	// Name is the node's hostname and its network namespace's name.
	Name string
	// Addr is the node's address on the bridge.
	Addr string
	// Host is the engine's socket, as DOCKER_HOST takes it.
	Host string
	// PIDFile holds the engine's (dockerd's) process ID.
	PIDFile string
}

// Workers lists the worker nodes scripts/infra.sh brings up.
func Workers() []Worker {
	var ws []Worker
	for i, name := range []string{"swh-node2", "swh-node3"} {
		ws = append(ws, Worker{
			Name:    name,
			Addr:    fmt.Sprintf("10.213.0.%d", i+2),
			Host:    "unix:///run/" + name + "/docker.sock",
			PIDFile: "/run/" + name + "/docker.pid",
		})
	}
	return ws
}

// Client returns a client for the worker's own engine.
func (w Worker) Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.WithHost(w.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("client for %s: %v", w.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var (
	nodesOnce sync.Once
	nodesErr  error
)

// RequireNodes is Require for tests of the three-node Swarm: it also
// checks that both workers are ready in the Swarm and their engines
// answer. Without them the test is skipped, or fails when CI=true.
func RequireNodes(t testing.TB) *client.Client {
	t.Helper()
	c := Require(t)
	nodesOnce.Do(func() { nodesErr = checkNodes(c) })
	if nodesErr != nil {
		msg := fmt.Sprintf("three-node Swarm needed (run scripts/infra.sh): %v", nodesErr)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return c
}

func checkNodes(c *client.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, w := range Workers() {
		n, err := workerNode(ctx, c, w)
		if err != nil {
			return err
		}
		if n.Status.State != swarm.NodeStateReady {
			return fmt.Errorf("node %s is %s, not ready", w.Name, n.Status.State)
		}
	}
	return nil
}

// workerNode finds w's node in the Swarm through w's own engine.
func workerNode(ctx context.Context, c *client.Client, w Worker) (swarm.Node, error) {
	wc, err := client.NewClientWithOpts(client.WithHost(w.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		return swarm.Node{}, err
	}
	defer wc.Close()
	info, err := wc.Info(ctx)
	if err != nil {
		return swarm.Node{}, fmt.Errorf("worker engine %s: %w", w.Host, err)
	}
	if info.Swarm.NodeID == "" {
		return swarm.Node{}, fmt.Errorf("worker %s is not in the Swarm (%s)", w.Name, info.Swarm.LocalNodeState)
	}
	n, _, err := c.NodeInspectWithRaw(ctx, info.Swarm.NodeID)
	if err != nil {
		return swarm.Node{}, fmt.Errorf("inspect node %s: %w", w.Name, err)
	}
	return n, nil
}

// NodeNames maps every Swarm node's ID to its hostname.
func NodeNames(t testing.TB, c *client.Client) map[string]string {
	t.Helper()
	nodes, err := c.NodeList(context.Background(), swarm.NodeListOptions{Filters: filters.NewArgs()})
	if err != nil {
		t.Fatalf("list nodes: %v", err)
	}
	m := map[string]string{}
	for _, n := range nodes {
		m[n.ID] = n.Description.Hostname
	}
	return m
}

// KillWorker kills w's engine (SIGKILL to its dockerd), as a node that is
// lost mid-rollout, and brings it back (scripts/infra.sh) when the test
// ends, so later tests have three nodes again. It returns the killed PID.
func KillWorker(t testing.TB, w Worker) int {
	t.Helper()
	b, err := os.ReadFile(w.PIDFile)
	if err != nil {
		t.Fatalf("read %s's pid: %v", w.Name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s's pid file: %v", w.Name, err)
	}
	t.Cleanup(func() { RestartWorkers(t) })
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s's dockerd (pid %d): %v", w.Name, pid, err)
	}
	return pid
}

// RestartWorkers runs scripts/infra.sh, which starts any worker engine
// that is not running and waits until it is back in the Swarm.
func RestartWorkers(t testing.TB) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(RepoRoot(), "scripts", "infra.sh"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("scripts/infra.sh to bring the workers back: %v\n%s", err, TrimLines(string(out), 30))
	}
}
