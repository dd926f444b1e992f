// Package groups benchmarks grouped rollouts on the three-node Swarm of
// scripts/infra.sh: three independent services of two replicas each, once
// in one group ([[a, b, c]]) and once one after another ([a, b, c]), side
// by side in one run, each measured from the signed push to the job's end
// (every service converged on the new digest). See bench/README.md.
package groups

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

const secret = "bench-groups-secret"

func BenchmarkGroupVsOneAfterAnother(b *testing.B) {
	c := testenv.RequireNodes(b)
	ns := testenv.Unique("bg")
	testenv.RemoveImagesOnCleanup(b, c, ns)
	initial := testenv.BuildAndPushDockerfile(b, c, fmt.Sprintf("%s/%s/app:init", testenv.NodeRegistry, ns), "v0", testenv.HealthyDockerfile)
	names := map[string][]string{}
	for _, kind := range []string{"grp", "seq"} {
		for i := range 3 {
			name := fmt.Sprintf("%s-%s%d", ns, kind, i)
			testenv.CreateService(b, c, name, initial, testenv.ServiceOptions{Replicas: 2, AnyNode: true})
			names[kind] = append(names[kind], name)
		}
	}
	grpRepo, seqRepo := testenv.NewGitRepo(b), testenv.NewGitRepo(b)
	target := `    images: [{name: %s/%s}]
    deploy:
      - branch: main
        services: %s
        update: {parallelism: 1, delay: 0s, monitor: 1s}
        timeout: 5m
`
	sh := testenv.StartSwarmhook(b, fmt.Sprintf("registry: {host: %q, insecure: true}\nprojects:\n", testenv.NodeRegistry)+
		fmt.Sprintf("  - name: grp\n    repo: %s\n    secret: %s\n", grpRepo.URL(), secret)+
		fmt.Sprintf(target, ns, "grp", fmt.Sprintf("[[{name: %s, image: %s/grp}, {name: %s, image: %s/grp}, {name: %s, image: %s/grp}]]", names["grp"][0], ns, names["grp"][1], ns, names["grp"][2], ns))+
		fmt.Sprintf("  - name: seq\n    repo: %s\n    secret: %s\n", seqRepo.URL(), secret)+
		fmt.Sprintf(target, ns, "seq", fmt.Sprintf("[{name: %s, image: %s/seq}, {name: %s, image: %s/seq}, {name: %s, image: %s/seq}]", names["seq"][0], ns, names["seq"][1], ns, names["seq"][2], ns)))

	push := func(project string, repo *testenv.GitRepo, version string) time.Duration {
		start := time.Now()
		j, log := sh.PushApp(repo, project, secret, "main", version, false)
		d := time.Since(start)
		if j.Status != "succeeded" {
			b.Fatalf("%s job %s: %s\n%s", project, j.Status, j.Error, testenv.TrimLines(log, 30))
		}
		return d
	}
	// A first push of each warms the build cache and every node's image
	// store with the base layers, so the runs measured compare rollouts.
	push("grp", grpRepo, "warm")
	push("seq", seqRepo, "warm")
	var grp, seq []time.Duration
	b.ResetTimer()
	for i := range b.N {
		v := fmt.Sprintf("v%d", i+1)
		if i%2 == 0 { // alternate which goes first
			seq = append(seq, push("seq", seqRepo, v))
			grp = append(grp, push("grp", grpRepo, v))
		} else {
			grp = append(grp, push("grp", grpRepo, v))
			seq = append(seq, push("seq", seqRepo, v))
		}
	}
	b.StopTimer()
	med := func(ds []time.Duration) time.Duration {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	b.ReportMetric(med(grp).Seconds(), "s-group")
	b.ReportMetric(med(seq).Seconds(), "s-one-after-another")
	b.ReportMetric(float64(med(grp))/float64(med(seq)), "ratio")
	b.Logf("push to converged, one group: %v", grp)
	b.Logf("push to converged, one after another: %v", seq)
}
