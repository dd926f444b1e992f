// Package prepull benchmarks pre_pull on the three-node Swarm of
// scripts/infra.sh: the largest stop-to-start gap of a task during a
// rolling update of an image with a fresh ~30 MB layer, with and without
// pre_pull, side by side in one run. See bench/README.md.
package prepull

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

const secret = "bench-prepull-secret"

// bigDockerfile is the healthy test app with a layer of 30 MB of random
// bytes made anew for every version, so every node has to pull it.
const bigDockerfile = "FROM swarmhook-test/busybox:latest\nCOPY app /app\nCOPY version.txt /version.txt\n" +
	"RUN head -c 30000000 /dev/urandom > /blob\n" +
	"HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1\nENTRYPOINT [\"/app\"]\n"

// maxGap is the largest time, over the service's task slots, from the
// old task's end to the new task's start on the new image.
func maxGap(b *testing.B, c *client.Client, service, newRef string) time.Duration {
	tasks, err := c.TaskList(context.Background(), swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", service))})
	if err != nil {
		b.Fatal(err)
	}
	stopped, started := map[int]time.Time{}, map[int]time.Time{}
	for _, t := range tasks {
		switch {
		case t.Spec.ContainerSpec.Image == newRef && t.Status.State == swarm.TaskStateRunning:
			started[t.Slot] = t.Status.Timestamp
		case t.Spec.ContainerSpec.Image != newRef && t.DesiredState == swarm.TaskStateShutdown:
			// The latest old task of the slot: the one the update stopped.
			if t.Status.Timestamp.After(stopped[t.Slot]) {
				stopped[t.Slot] = t.Status.Timestamp
			}
		}
	}
	var gaps []time.Duration
	for slot, s := range started {
		if st, ok := stopped[slot]; ok {
			gaps = append(gaps, s.Sub(st))
		}
	}
	if len(gaps) == 0 {
		b.Fatalf("no slot of %s has both an old and a new task", service)
	}
	return slices.Max(gaps)
}

func BenchmarkPrePullGap(b *testing.B) {
	c := testenv.RequireNodes(b)
	ns := testenv.Unique("bp")
	testenv.RemoveImagesOnCleanup(b, c, ns)
	services := map[string]string{}
	repos := map[string]*testenv.GitRepo{}
	cfg := fmt.Sprintf("registry: {host: %q, insecure: true}\nprojects:\n", testenv.NodeRegistry)
	for _, kind := range []string{"pull", "nopull"} {
		initial := testenv.BuildAndPushDockerfile(b, c, fmt.Sprintf("%s/%s/%s:init", testenv.NodeRegistry, ns, kind), "v0", testenv.HealthyDockerfile)
		services[kind] = ns + "-" + kind
		testenv.CreateService(b, c, services[kind], initial, testenv.ServiceOptions{Replicas: 3, AnyNode: true, MaxPerNode: 1})
		repos[kind] = testenv.NewGitRepo(b)
		cfg += fmt.Sprintf(`  - name: %s
    repo: %s
    secret: %s
    images: [{name: %s/%s}]
    deploy:
      - branch: main
        services: [{name: %s, image: %s/%s}]
        update: {parallelism: 1, delay: 0s, monitor: 1s}
        pre_pull: %t
        timeout: 5m
`, kind, repos[kind].URL(), secret, ns, kind, services[kind], ns, kind, kind == "pull")
	}
	sh := testenv.StartSwarmhook(b, cfg)

	push := func(kind, version string) time.Duration {
		files := testenv.AppFiles(b, kind+" "+version)
		files["Dockerfile"] = bigDockerfile
		commit := repos[kind].Commit(version, files)
		code, body := sh.GitHubPush(kind, secret, testenv.GitHubPushBody("main", strings.Repeat("1", 40), commit, version))
		var a struct{ Job int64 }
		if code != http.StatusAccepted || json.Unmarshal(body, &a) != nil {
			b.Fatalf("push: %d %s", code, body)
		}
		j, log := sh.WaitJob(a.Job, 6*time.Minute)
		if j.Status != "succeeded" {
			b.Fatalf("%s job %s: %s\n%s", kind, j.Status, j.Error, testenv.TrimLines(log, 30))
		}
		return maxGap(b, c, services[kind], j.Images[0].Ref)
	}
	var with, without []time.Duration
	b.ResetTimer()
	for i := range b.N {
		v := fmt.Sprintf("v%d", i+1)
		if i%2 == 0 {
			without = append(without, push("nopull", v))
			with = append(with, push("pull", v))
		} else {
			with = append(with, push("pull", v))
			without = append(without, push("nopull", v))
		}
	}
	b.StopTimer()
	b.ReportMetric(slices.Max(with).Seconds(), "s-gap-prepull")
	b.ReportMetric(slices.Max(without).Seconds(), "s-gap-no-prepull")
	b.ReportMetric(float64(slices.Max(with))/float64(slices.Max(without)), "ratio")
	b.Logf("largest stop-to-start gap per run, pre_pull: %v", with)
	b.Logf("largest stop-to-start gap per run, no pre_pull: %v", without)
}
