package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

// The tests here run on the three-node Swarm of scripts/infra.sh (the
// host as manager, swh-node2 and swh-node3 as workers) and pull from the
// registry where every node reaches it, testenv.NodeRegistry.

// nodeTasks maps each node's hostname to the images of the service's
// tasks that Swarm wants running and that run there.
func nodeTasks(t *testing.T, c *client.Client, service string) map[string][]string {
	t.Helper()
	names := testenv.NodeNames(t, c)
	tasks, err := c.TaskList(context.Background(), swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", service), filters.Arg("desired-state", "running"))})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, tk := range tasks {
		if tk.Status.State == swarm.TaskStateRunning {
			out[names[tk.NodeID]] = append(out[names[tk.NodeID]], tk.Spec.ContainerSpec.Image)
		}
	}
	return out
}

// workerRuns checks on the worker's own engine that a container of the
// service runs ref (repo:tag@digest), from an image it pulled by that
// digest.
func workerRuns(t *testing.T, w testenv.Worker, service, ref string) {
	t.Helper()
	wc := w.Client(t)
	ctx := context.Background()
	cs, err := wc.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", "com.docker.swarm.service.name="+service), filters.Arg("status", "running"))})
	if err != nil {
		t.Fatalf("%s: list containers: %v", w.Name, err)
	}
	var images []string
	for _, ct := range cs {
		images = append(images, ct.Image)
	}
	if !slices.Contains(images, ref) {
		t.Errorf("%s runs %v for %s, want %s", w.Name, images, service, ref)
	}
	repo, digest, _ := strings.Cut(ref, "@")
	repo = repo[:strings.LastIndex(repo, ":")]
	im, err := wc.ImageInspect(ctx, repo+"@"+digest)
	if err != nil {
		t.Errorf("%s has not pulled %s@%s: %v", w.Name, repo, digest, err)
		return
	}
	if !slices.Contains(im.RepoDigests, repo+"@"+digest) {
		t.Errorf("%s: image repo digests %v, want %s@%s", w.Name, im.RepoDigests, repo, digest)
	}
}

// nodeApp is one test app service on the three-node Swarm and the
// swarmhook deploying it from its own repository.
type nodeApp struct {
	c       *client.Client
	ns, svc string
	initial string // the image the service starts on
	repo    *testenv.GitRepo
	sh      *testenv.Swarmhook
}

// newNodeApp creates service ns-app on initial (pushed to
// testenv.NodeRegistry) shaped by o, and starts swarmhook with project ns
// deploying main to it from regHost (testenv.NodeRegistry when empty);
// extra is YAML added to the registry section and the deploy target.
func newNodeApp(t *testing.T, prefix string, o testenv.ServiceOptions, regHost, regExtra, targetExtra string) *nodeApp {
	c := testenv.RequireNodes(t)
	a := &nodeApp{c: c, ns: testenv.Unique(prefix), repo: testenv.NewGitRepo(t)}
	testenv.RemoveImagesOnCleanup(t, c, a.ns)
	a.initial = testenv.BuildAndPushDockerfile(t, c, fmt.Sprintf("%s/%s/app:init", testenv.NodeRegistry, a.ns), "v0", testenv.HealthyDockerfile)
	a.svc = a.ns + "-app"
	testenv.CreateService(t, c, a.svc, a.initial, o)
	if regHost == "" {
		regHost = testenv.NodeRegistry
	}
	a.sh = testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true%s}
projects:
  - name: %s
    repo: %s
    secret: %s
    images: [{name: %s/app}]
    deploy:
      - branch: main
        services: [{name: %s, image: %s/app}]
%s`, regHost, regExtra, a.ns, a.repo.URL(), secret, a.ns, a.svc, a.ns, targetExtra))
	return a
}

// push commits version and waits for its job.
func (a *nodeApp) push(t *testing.T, version string) (testenv.Job, string) {
	return a.sh.PushApp(a.repo, a.ns, secret, "main", version, false)
}

// TestMultiNodeGroupRollsOutOnEveryNode rolls two services in one group:
// one with a task on each of the three nodes, one kept on the workers by
// its constraint. Every node pulls the pushed digest, the constraint
// stays, and the two services roll at the same time.
func TestMultiNodeGroupRollsOutOnEveryNode(t *testing.T) {
	t.Parallel()
	c := testenv.RequireNodes(t)
	ns := testenv.Unique("mn")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	ref := fmt.Sprintf("%s/%s/app:init", testenv.NodeRegistry, ns)
	initial := testenv.BuildAndPushDockerfile(t, c, ref, "v0", testenv.HealthyDockerfile)
	everywhere, workers := ns+"-all", ns+"-workers"
	testenv.CreateService(t, c, everywhere, initial, testenv.ServiceOptions{Replicas: 3, AnyNode: true, MaxPerNode: 1})
	testenv.CreateService(t, c, workers, initial, testenv.ServiceOptions{Replicas: 2, Constraints: []string{testenv.WorkersOnly}, MaxPerNode: 1})

	repo := testenv.NewGitRepo(t)
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - name: mn
    repo: %s
    secret: %s
    images: [{name: %s/app}]
    deploy:
      - branch: main
        services: [[%s, %s]]
        update: {parallelism: 1, delay: 0s, monitor: 1s}
        timeout: 3m
`, testenv.NodeRegistry, repo.URL(), secret, ns, everywhere, workers))

	j, log := sh.PushApp(repo, "mn", secret, "main", "v1", false)
	if j.Status != "succeeded" {
		t.Fatalf("job %s: %s\n%s", j.Status, j.Error, testenv.TrimLines(log, 40))
	}
	newRef := j.Images[0].Ref
	if !strings.Contains(log, "rolling "+everywhere+", "+workers+" at the same time") {
		t.Errorf("the log does not say the group rolled at once:\n%s", testenv.TrimLines(log, 30))
	}
	if len(j.Services) != 2 {
		t.Fatalf("services = %+v", j.Services)
	}
	a, b := j.Services[0], j.Services[1]
	if a.Outcome != "updated" || b.Outcome != "updated" {
		t.Errorf("outcomes %s, %s; want updated", a.Outcome, b.Outcome)
	}
	if !(a.Started.Before(b.Finished) && b.Started.Before(a.Finished)) {
		t.Errorf("%s ran %s..%s and %s %s..%s: the group did not roll at the same time", a.Service, a.Started, a.Finished, b.Service, b.Started, b.Finished)
	}

	got := nodeTasks(t, c, everywhere)
	if len(got) != 3 {
		t.Errorf("%s runs on %d nodes (%v), want 3", everywhere, len(got), got)
	}
	for node, images := range got {
		if len(images) != 1 || images[0] != newRef {
			t.Errorf("%s on %s runs %v, want %s", everywhere, node, images, newRef)
		}
	}
	onWorkers := nodeTasks(t, c, workers)
	for _, w := range testenv.Workers() {
		workerRuns(t, w, everywhere, newRef)
		if imgs := onWorkers[w.Name]; len(imgs) != 1 || imgs[0] != newRef {
			t.Errorf("%s on %s runs %v, want %s", workers, w.Name, imgs, newRef)
		}
	}
	if len(onWorkers) != 2 {
		t.Errorf("%s runs on %v, want the two workers only", workers, onWorkers)
	}
	// The services API shows each task with its node, state and digest.
	code, body := sh.API(http.MethodGet, "/api/services", nil)
	var api struct {
		Services []struct {
			Name  string
			Tasks []struct{ Node, State, Image string }
		}
	}
	if err := json.Unmarshal(body, &api); code != http.StatusOK || err != nil {
		t.Fatalf("GET /api/services: %d %s (%v)", code, body, err)
	}
	found := false
	for _, svc := range api.Services {
		if svc.Name != everywhere {
			continue
		}
		found = true
		nodes := map[string]bool{}
		for _, tk := range svc.Tasks {
			nodes[tk.Node] = true
			if tk.State != "running" || tk.Image != j.Images[0].Ref {
				t.Errorf("API: task on %s is %s on %s, want running %s", tk.Node, tk.State, tk.Image, j.Images[0].Ref)
			}
		}
		for _, w := range testenv.Workers() {
			if !nodes[w.Name] {
				t.Errorf("API lists %s's tasks on %v, not on %s", everywhere, nodes, w.Name)
			}
		}
		if len(nodes) != 3 {
			t.Errorf("API lists %s's tasks on %d nodes, want 3: %s", everywhere, len(nodes), body)
		}
	}
	if !found {
		t.Errorf("GET /api/services does not list %s: %s", everywhere, body)
	}
	if cs := testenv.Inspect(t, c, workers).Spec.TaskTemplate.Placement.Constraints; !slices.Equal(cs, []string{testenv.WorkersOnly}) {
		t.Errorf("%s's constraints are %v after the update, want %v", workers, cs, []string{testenv.WorkersOnly})
	}
}

// TestMultiNodeAuthRegistry deploys from a registry that wants a password
// to tasks on the workers only: they can pull only with the credentials
// swarmhook sends with the update.
func TestMultiNodeAuthRegistry(t *testing.T) {
	testenv.RequireNodes(t)
	const password = "node-reg-pa55-41c9e2"
	regHost := testenv.StartAuthRegistryOn(t, testenv.BridgeAddr, "puller", password)
	t.Setenv("E2E_NODE_REG_PASSWORD", password)
	a := newNodeApp(t, "mnauth", testenv.ServiceOptions{Replicas: 2, Constraints: []string{testenv.WorkersOnly}, MaxPerNode: 1},
		regHost, `, username: puller, password: "${E2E_NODE_REG_PASSWORD}"`, "        update: {parallelism: 1, delay: 0s, monitor: 1s}\n        timeout: 3m\n")
	svc, sh := a.svc, a.sh

	j, log := a.push(t, "v1")
	if j.Status != "succeeded" {
		t.Fatalf("job %s: %s\n%s", j.Status, j.Error, testenv.TrimLines(log, 40))
	}
	newRef := j.Images[0].Ref
	if !strings.HasPrefix(newRef, regHost+"/") {
		t.Fatalf("job deployed %s, not from the password-protected registry %s", newRef, regHost)
	}
	for _, w := range testenv.Workers() {
		workerRuns(t, w, svc, newRef)
	}
	if strings.Contains(log, password) || strings.Contains(sh.Output(), password) {
		t.Error("the registry password shows in the job log or swarmhook's output")
	}
}

// TestMultiNodeWorkerLostMidRollout kills a worker's engine while a
// rollout is on its way. Whatever Swarm does (pause, roll back, or
// converge on the remaining nodes), the job says so, and never says
// updated while a task Swarm keeps runs something else.
func TestMultiNodeWorkerLostMidRollout(t *testing.T) {
	tests := []struct {
		name       string
		maxPerNode uint64
	}{
		// The lost node's task can go nowhere else.
		{"no room left", 1},
		// The remaining nodes may take the lost node's task.
		{"room on the remaining nodes", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { loseWorkerMidRollout(t, tt.maxPerNode) })
	}
}

func loseWorkerMidRollout(t *testing.T, maxPerNode uint64) {
	a := newNodeApp(t, "mnlost", testenv.ServiceOptions{Replicas: 3, AnyNode: true, MaxPerNode: maxPerNode}, "", "",
		"        update: {parallelism: 1, delay: 4s, monitor: 2s, failure_action: pause}\n        timeout: 60s\n")
	c, svc, initial := a.c, a.svc, a.initial

	// The push runs in the background; once the first task runs the new
	// image, kill a worker that still runs an old one.
	type done struct {
		j   testenv.Job
		log string
	}
	end := make(chan done, 1)
	go func() {
		j, log := a.push(t, "v1")
		end <- done{j, log}
	}()
	var victim testenv.Worker
	testenv.Eventually(t, 3*time.Minute, 100*time.Millisecond, func() (bool, string) {
		got := nodeTasks(t, c, svc)
		moved := 0
		for _, imgs := range got {
			for _, im := range imgs {
				if im != initial {
					moved++
				}
			}
		}
		if moved == 0 {
			return false, fmt.Sprintf("no task on the new image yet: %v", got)
		}
		for _, w := range testenv.Workers() {
			if imgs := got[w.Name]; len(imgs) == 1 && imgs[0] == initial {
				victim = w
				return true, ""
			}
		}
		return false, fmt.Sprintf("no worker left on the old image: %v", got)
	})
	pid := testenv.KillWorker(t, victim)
	t.Logf("killed %s's dockerd (pid %d) mid-rollout", victim.Name, pid)

	var d done
	select {
	case d = <-end:
	case <-time.After(5 * time.Minute):
		t.Fatal("the job did not end within 5m of the worker's loss")
	}
	if len(d.j.Services) != 1 {
		t.Fatalf("job %s: services %+v\n%s", d.j.Status, d.j.Services, testenv.TrimLines(d.log, 40))
	}
	res := d.j.Services[0]
	t.Logf("job %s, %s: %s %s", d.j.Status, svc, res.Outcome, res.Message)
	switch res.Outcome {
	case "updated":
		// Converged on the remaining nodes: every task Swarm keeps runs
		// the new digest, and none is on the lost node.
		got := nodeTasks(t, c, svc)
		n := 0
		for node, imgs := range got {
			for _, im := range imgs {
				n++
				if im != res.Image {
					t.Errorf("job says updated, but a task on %s runs %s, not %s", node, im, res.Image)
				}
			}
		}
		if got[victim.Name] != nil {
			t.Errorf("job says updated, but Swarm still counts a task on the lost node %s: %v", victim.Name, got)
		}
		if n != 3 {
			t.Errorf("job says updated with %d of 3 tasks running: %v", n, got)
		}
	case "paused", "rolled_back", "timed_out":
		if d.j.Status != "failed" || res.Message == "" {
			t.Errorf("job %s, outcome %s with message %q: want a failed job saying what Swarm did", d.j.Status, res.Outcome, res.Message)
		}
		if res.Outcome == "timed_out" && !strings.Contains(res.Message, "tasks running the current spec") {
			t.Errorf("timed out without saying how far Swarm got: %q", res.Message)
		}
	default:
		t.Errorf("outcome %q (%s): want updated, paused, rolled_back or timed_out\n%s", res.Outcome, res.Message, testenv.TrimLines(d.log, 40))
	}
}

// TestMultiNodePrePull pulls the new digest on all three nodes before the
// rolling update starts, through a one-shot job that never runs the
// image's code, and leaves no trace of it.
func TestMultiNodePrePull(t *testing.T) {
	t.Parallel()
	a := newNodeApp(t, "mnpull", testenv.ServiceOptions{Replicas: 3, AnyNode: true, MaxPerNode: 1}, "", "",
		"        update: {parallelism: 1, delay: 0s, monitor: 1s}\n        pre_pull: true\n        timeout: 3m\n")
	c, svc := a.c, a.svc

	j, log := a.push(t, "v1")
	if j.Status != "succeeded" {
		t.Fatalf("job %s: %s\n%s", j.Status, j.Error, testenv.TrimLines(log, 40))
	}
	pulled := strings.Index(log, "pre-pulled on 3 of 3 nodes")
	updating := strings.Index(log, "service "+svc+": updating")
	if pulled >= 0 {
		t.Log(strings.SplitN(log[pulled:], "\n", 2)[0])
	}
	if pulled < 0 || updating < 0 || pulled > updating {
		t.Errorf("the log does not say all three nodes pulled before the update started:\n%s", testenv.TrimLines(log, 30))
	}
	for _, w := range testenv.Workers() {
		workerRuns(t, w, svc, j.Images[0].Ref)
	}
	left, err := c.ServiceList(context.Background(), swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", "io.swarmhook.prepull="+svc))})
	if err != nil || len(left) != 0 {
		t.Errorf("pre-pull services left behind: %d (%v)", len(left), err)
	}
}
