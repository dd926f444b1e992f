package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/imageref"
	"github.com/swarmhook/swarmhook/registry"
)

// AppDockerfile builds the test app FROM scratch around its static binary.
const AppDockerfile = "FROM scratch\nCOPY app /app\nCOPY version.txt /version.txt\nENTRYPOINT [\"/app\"]\n"

// HealthyDockerfile builds the test app on the local busybox base with a
// HEALTHCHECK that passes while the app answers.
const HealthyDockerfile = "FROM swarmhook-test/busybox:latest\nCOPY app /app\nCOPY version.txt /version.txt\n" +
	"HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1\nENTRYPOINT [\"/app\"]\n"

// UnhealthyDockerfile is the same app with a HEALTHCHECK that always
// fails, so Swarm's failure action kicks in.
const UnhealthyDockerfile = "FROM swarmhook-test/busybox:latest\nCOPY app /app\nCOPY version.txt /version.txt\n" +
	"HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD false\nENTRYPOINT [\"/app\"]\n"

// AppFiles are the files of a repository holding the test app, answering
// with version.
func AppFiles(t testing.TB, version string) map[string]string {
	return map[string]string{
		"app":         "copy:" + GoBinary(t, "./internal/testenv/testapp"),
		"version.txt": version,
		"Dockerfile":  AppDockerfile,
	}
}

// BuildAndPush builds the test app answering version as ref and pushes it
// to the test registry, returning ref@digest. Tests use it for a
// service's image before swarmhook's first deploy.
func BuildAndPush(t testing.TB, c *client.Client, ref, version string) string {
	t.Helper()
	return BuildAndPushDockerfile(t, c, ref, version, AppDockerfile)
}

// BuildAndPushDockerfile is BuildAndPush with another Dockerfile, such as
// HealthyDockerfile.
func BuildAndPushDockerfile(t testing.TB, c *client.Client, ref, version, dockerfile string) string {
	t.Helper()
	dir := t.TempDir()
	files := AppFiles(t, version)
	// The label right after FROM makes every step of this build the
	// test's own: identical test apps would otherwise share their cached
	// steps, and a swarmhook of another test pruning its superseded
	// images (with their parents) would delete them under this build.
	from, rest, _ := strings.Cut(dockerfile, "\n")
	files["Dockerfile"] = from + "\nLABEL io.swarmhook.test.ref=" + strconv.Quote(ref) + "\n" + rest
	for name, body := range files {
		if src, ok := strings.CutPrefix(body, "copy:"); ok {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			body = string(b)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	e := builder.NewEngine(c, registry.Credentials{}.EngineAuth(), builder.Classic)
	req := builder.Request{ContextDir: dir, Dockerfile: "Dockerfile", Tags: []string{ref}}
	if _, err := e.Build(ctx, req, io.Discard); err != nil {
		t.Fatalf("build %s: %v", ref, err)
	}
	digest, err := e.Push(ctx, ref, io.Discard)
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return imageref.Pinned(ref, digest)
}

// RemoveImagesOnCleanup removes, when the test ends, every local image
// whose repository contains ns, so repeated runs do not fill the disk.
func RemoveImagesOnCleanup(t testing.TB, c *client.Client, ns string) {
	t.Cleanup(func() { RemoveImages(c, ns) })
}

// RemoveImages untags on c's engine every image tagged under namespace
// ns (registry/ns/...). Their untagged parents stay: end-to-end tests run
// side by side, and a classic build of another test may be stepping
// through the same cached parents (identical test apps share them), which
// removing them would fail with "unable to find image".
func RemoveImages(c *client.Client, ns string) {
	ctx := context.Background()
	imgs, err := c.ImageList(ctx, image.ListOptions{})
	if err != nil {
		return
	}
	for _, im := range imgs {
		for _, tag := range im.RepoTags {
			if strings.Contains(tag, "/"+ns+"/") {
				c.ImageRemove(ctx, tag, image.RemoveOptions{Force: true})
			}
		}
	}
}

// ServiceOptions shape a test service.
type ServiceOptions struct {
	Replicas uint64
	// HostPort, when set, publishes container port 8080 there in host mode.
	HostPort int
	// Healthcheck, when set, replaces the image's.
	Healthcheck []string
	// AnyNode lets Swarm place tasks on worker nodes too. By default a
	// test service stays on the manager, this host: workers (the
	// multi-node Swarm of scripts/infra.sh) reach the registry at another
	// address and publish ports in their own network namespaces.
	AnyNode bool
	// Constraints, when set, are the service's placement constraints in
	// place of ManagerOnly (e.g. WorkersOnly).
	Constraints []string
	// MaxPerNode, when set, caps the service's tasks per node, so
	// replicas as many as the nodes put one task on each.
	MaxPerNode uint64
}

// ManagerOnly is the placement constraint that keeps a service's tasks on
// the manager node, where 127.0.0.1:5000 is the registry and published
// ports are reachable on 127.0.0.1.
const ManagerOnly = "node.role==manager"

// CreateService creates a replicated Swarm service running image and
// removes it when the test ends. It waits until its tasks run.
func CreateService(t testing.TB, c *client.Client, name, image string, o ServiceOptions) swarm.Service {
	t.Helper()
	ctx := context.Background()
	replicas := o.Replicas
	if replicas == 0 {
		replicas = 1
	}
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: map[string]string{"swarmhook.test": "1"}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: image, Env: []string{"KEEP_ME=1"}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
	}
	spec.TaskTemplate.Placement = &swarm.Placement{Constraints: o.Constraints, MaxReplicas: o.MaxPerNode}
	if !o.AnyNode && len(o.Constraints) == 0 {
		spec.TaskTemplate.Placement.Constraints = []string{ManagerOnly}
	}
	if len(o.Healthcheck) > 0 {
		spec.TaskTemplate.ContainerSpec.Healthcheck = &container.HealthConfig{Test: o.Healthcheck, Interval: time.Second, Timeout: 2 * time.Second, Retries: 2}
	}
	if o.HostPort != 0 {
		spec.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{
			Protocol: swarm.PortConfigProtocolTCP, TargetPort: 8080, PublishedPort: uint32(o.HostPort),
			PublishMode: swarm.PortConfigPublishModeHost,
		}}}
	}
	resp, err := c.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatalf("create service %s: %v", name, err)
	}
	t.Cleanup(func() { c.ServiceRemove(context.Background(), resp.ID) })
	Eventually(t, 90*time.Second, 250*time.Millisecond, func() (bool, string) {
		n, err := RunningTasks(c, resp.ID, image)
		return err == nil && n == int(replicas), fmt.Sprintf("%d/%d tasks running (%v)", n, replicas, err)
	})
	s, _, err := c.ServiceInspectWithRaw(ctx, resp.ID, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// RunningTasks counts the service's running tasks on image.
func RunningTasks(c *client.Client, service, image string) (int, error) {
	tasks, err := c.TaskList(context.Background(), swarm.TaskListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range tasks {
		if (t.ServiceID == service) && t.DesiredState == swarm.TaskStateRunning && t.Status.State == swarm.TaskStateRunning &&
			t.Spec.ContainerSpec != nil && t.Spec.ContainerSpec.Image == image {
			n++
		}
	}
	return n, nil
}

// Inspect returns the service as Swarm sees it now.
func Inspect(t testing.TB, c *client.Client, name string) swarm.Service {
	t.Helper()
	s, _, err := c.ServiceInspectWithRaw(context.Background(), name, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Get fetches url and returns its body, or "" and the error text.
func Get(url string) (string, error) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
