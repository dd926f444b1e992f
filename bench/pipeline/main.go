// Command pipeline is the driver of the pipeline benchmark: on the real
// engine, registry and Swarm it times a push to a two-image app until
// every one of its three services runs the new digest, for swarmhook
// (sequential and pipeline: overlap) and for reference.sh, the shell
// pipeline it replaces, in alternating runs; then a burst of pushes to one
// branch on both; and writes the results as Markdown.
//
// "Converged" is read from Swarm itself after each run, the same way for
// both paths: the moment the last task of the last service, running the
// new digest, entered the running state (the task's own status time).
//
// bench/run.sh builds what this needs and runs it; bench/README.md says
// what the numbers mean. Secrets are made up here and reach swarmhook
// through its environment, never its command line.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/swarmhook/swarmhook/imageref"
	"github.com/swarmhook/swarmhook/webhook"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline bench:", err)
		os.Exit(1)
	}
}

// options are the driver's flags.
type options struct {
	swarmhook, app, reference, out, registry string
	runs, burst, unchanged                   int
	burstGap, sleep                          time.Duration
	skipBurst, skipOverlap                   bool
}

func run() error {
	var o options
	flag.StringVar(&o.swarmhook, "swarmhook", "", "swarmhook binary")
	flag.StringVar(&o.app, "app", "", "static binary of the web app (internal/testenv/testapp)")
	flag.StringVar(&o.reference, "reference", "bench/pipeline/reference.sh", "the shell pipeline")
	flag.StringVar(&o.out, "out", "bench/RESULTS.md", "where to write the results")
	flag.StringVar(&o.registry, "registry", "127.0.0.1:5000", "registry host:port")
	flag.IntVar(&o.runs, "runs", 5, "measured runs of each path")
	flag.IntVar(&o.burst, "burst", 10, "pushes in the burst scenario")
	flag.DurationVar(&o.burstGap, "burst-gap", 200*time.Millisecond, "time between the burst's pushes")
	flag.DurationVar(&o.sleep, "build-sleep", 2*time.Second, "RUN sleep in each image's build, so builds take a few seconds")
	flag.BoolVar(&o.skipBurst, "skip-burst", false, "leave out the burst scenario")
	flag.BoolVar(&o.skipOverlap, "skip-overlap", false, "leave out the pipeline: overlap path")
	flag.IntVar(&o.unchanged, "unchanged", 0, "rebuilds of an unchanged commit to time at the end")
	flag.Parse()
	if o.swarmhook == "" || o.app == "" {
		return errors.New("-swarmhook and -app are required")
	}
	ctx := context.Background()
	e, err := setUp(ctx, o)
	if err != nil {
		return err
	}
	defer e.tearDown()

	if o.skipOverlap {
		paths = []string{pathShell, pathSequential}
	}
	logf("warm-up: one run of each path (not counted)")
	for _, p := range paths {
		if _, err := e.once(ctx, p); err != nil {
			return fmt.Errorf("warm-up %s: %w", p, err)
		}
	}
	var samples []sample
	for round := 0; round < o.runs; round++ {
		order := slices.Clone(paths)
		for k := 0; k < round%len(order); k++ { // rotate, so no path always goes first
			order = append(order[1:], order[0])
		}
		for _, p := range order {
			s, err := e.once(ctx, p)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, p, err)
			}
			s.round = round
			samples = append(samples, s)
			logf("round %d %-9s converged %6.2fs, done %6.2fs", round+1, p, s.converged.Seconds(), s.done.Seconds())
		}
	}
	var bursts []burstResult
	if !o.skipBurst {
		for _, p := range []string{pathShell, pathSequential} {
			b, err := e.burstOf(ctx, p)
			if err != nil {
				return fmt.Errorf("burst %s: %w", p, err)
			}
			bursts = append(bursts, b)
			logf("burst %-9s %d builds, last commit live %.2fs after the first push", p, b.builds, b.fromFirst.Seconds())
		}
	}
	var rebuilds []rebuild
	if o.unchanged > 0 {
		if rebuilds, err = e.unchangedRuns(ctx); err != nil {
			return fmt.Errorf("unchanged rebuilds: %w", err)
		}
	}
	report := e.report(samples, bursts) + reportRebuilds(rebuilds)
	if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", o.out, err)
	}
	fmt.Print(report)
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().UTC().Format("15:04:05 ")+format+"\n", args...)
}

// The three ways a push is taken to the services.
const (
	pathShell      = "shell"
	pathSequential = "swarmhook"
	pathOverlap    = "overlap"

	// branchOverlap is the branch whose deploy target has pipeline: overlap.
	branchOverlap = "overlap"
)

var paths = []string{pathShell, pathSequential, pathOverlap}

// Services and the image each runs, in deploy order; images and their
// build contexts.
var (
	serviceImages = [][2]string{{"api", "api"}, {"worker", "api"}, {"web", "web"}}
	imageNames    = []string{"api", "web"}
)

const replicas = 2

// env is everything one benchmark run set up.
type env struct {
	o       options
	dir     string // scratch space
	origin  string // the repository pushes go to
	ciDir   string // the shell pipeline's warm working copy
	ns      string // registry/namespace of the images
	prefix  string // service name prefix
	docker  *client.Client
	sh      *exec.Cmd
	shURL   string
	secret  string
	token   string
	version int
}

func setUp(ctx context.Context, o options) (*env, error) {
	dc, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	if _, err := dc.Info(ctx); err != nil {
		return nil, fmt.Errorf("docker engine (run scripts/infra.sh): %w", err)
	}
	id := randomHex(3)
	dir, err := os.MkdirTemp("", "swarmhook-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{o: o, dir: dir, origin: filepath.Join(dir, "origin"), ciDir: filepath.Join(dir, "ci"),
		ns: o.registry + "/bench-" + id, prefix: "bench" + id + "_", docker: dc, secret: randomHex(16), token: randomHex(16)}
	if err := e.makeRepo(); err != nil {
		e.tearDown()
		return nil, err
	}
	logf("building and pushing the first images, creating %d services of %d replicas", len(serviceImages), replicas)
	if _, err := e.shell(ctx, e.commit(), "", ""); err != nil {
		e.tearDown()
		return nil, fmt.Errorf("first images: %w", err)
	}
	for _, si := range serviceImages {
		args := []string{"service", "create", "-d", "-q", "--name", e.prefix + si[0], "--replicas", strconv.Itoa(replicas),
			"--label", "swarmhook.bench=1", "--constraint", "node.role==manager", "--update-parallelism", "1", "--update-delay", "0s", "--update-monitor", updateMonitor.String(),
			"--update-failure-action", "rollback", "--update-order", "stop-first", e.ns + "/" + si[1] + ":main-latest"}
		if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
			e.tearDown()
			return nil, fmt.Errorf("docker service create: %v: %s", err, out)
		}
	}
	if err := e.startSwarmhook(); err != nil {
		e.tearDown()
		return nil, err
	}
	return e, nil
}

// updateMonitor is Swarm's monitor period on every service, the same for
// both paths: swarmhook's config sets it, the services are created with it
// and docker service update keeps it.
const updateMonitor = time.Second

// makeRepo writes the app's repository and the shell pipeline's clone.
func (e *env) makeRepo() error {
	app, err := os.ReadFile(e.o.app)
	if err != nil {
		return err
	}
	dockerfile := fmt.Sprintf("FROM swarmhook-test/busybox:latest\nCOPY app /app\nCOPY version.txt /version.txt\n"+
		"# Stands in for compiling: makes each build take a few seconds.\nRUN sleep %g\nENTRYPOINT [\"/app\"]\n", e.o.sleep.Seconds())
	for _, img := range imageNames {
		d := filepath.Join(e.origin, img)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, "app"), app, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
			return err
		}
	}
	if err := git(e.origin, "init", "-q", "-b", "main"); err != nil {
		return err
	}
	// The shell's working copy is made after the first commit (commit).
	return nil
}

// commit changes both images' source and returns the new commit. The
// run's own namespace is in the text, so no build finds a layer an
// earlier run left in the engine's cache.
func (e *env) commit() string {
	e.version++
	for _, img := range imageNames {
		os.WriteFile(filepath.Join(e.origin, img, "version.txt"), []byte(fmt.Sprintf("%s v%d %s\n", img, e.version, e.ns)), 0o644)
	}
	if err := git(e.origin, "add", "-A"); err != nil {
		panic(err)
	}
	if err := git(e.origin, "commit", "-q", "-m", fmt.Sprintf("v%d", e.version)); err != nil {
		panic(err)
	}
	out, err := exec.Command("git", "-C", e.origin, "rev-parse", "HEAD").Output()
	if err != nil {
		panic(err)
	}
	if _, err := os.Stat(e.ciDir); errors.Is(err, os.ErrNotExist) {
		if err := git(e.dir, "clone", "-q", e.origin, e.ciDir); err != nil {
			panic(err)
		}
	}
	return strings.TrimSpace(string(out))
}

func git(dir string, args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@example.com",
		"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %v: %v: %s", args, err, out)
	}
	return nil
}

// startSwarmhook runs swarmhook with one project whose two deploy targets
// share the images and services: branch main (sequential) and branch
// overlap (pipeline: overlap). One project, because swarmhook refuses a
// service claimed by two.
func (e *env) startSwarmhook() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var images, services strings.Builder
	for _, img := range imageNames {
		fmt.Fprintf(&images, "{name: %s/%s, context: %s}, ", strings.TrimPrefix(e.ns, e.o.registry+"/"), img, img)
	}
	for _, si := range serviceImages {
		fmt.Fprintf(&services, "{name: %s%s, image: %s/%s}, ", e.prefix, si[0], strings.TrimPrefix(e.ns, e.o.registry+"/"), si[1])
	}
	svc := strings.TrimSuffix(services.String(), ", ")
	target := func(branch, pipeline string) string {
		return fmt.Sprintf(`      - branch: %s
        services: [%s]
        update: {parallelism: 1, delay: 0s, monitor: %s, failure_action: rollback, order: stop-first}
        pipeline: %s
`, branch, svc, updateMonitor, pipeline)
	}
	cfg := fmt.Sprintf("listen: 127.0.0.1:%d\ndata_dir: %s\nregistry: {host: %q, insecure: true}\n"+
		"tokens: [{name: bench, token: \"${BENCH_TOKEN}\", scopes: [read]}]\nprojects:\n"+
		"  - name: bench\n    repo: file://%s\n    secret: \"${BENCH_SECRET}\"\n    images: [%s]\n    deploy:\n%s%s",
		port, filepath.Join(e.dir, "data"), e.o.registry, e.origin, strings.TrimSuffix(images.String(), ", "),
		target("main", "sequential"), target(branchOverlap, "overlap"))
	path := filepath.Join(e.dir, "swarmhook.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(e.dir, "swarmhook.log"))
	if err != nil {
		return err
	}
	e.sh = exec.Command(e.o.swarmhook, "serve", "-config", path, "-log-level", "warn")
	e.sh.Env = append(os.Environ(), "BENCH_SECRET="+e.secret, "BENCH_TOKEN="+e.token)
	e.sh.Stdout, e.sh.Stderr = log, log
	if err := e.sh.Start(); err != nil {
		return err
	}
	e.shURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	for range 200 {
		if resp, err := http.Get(e.shURL + "/healthz"); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("swarmhook did not answer within 10s; see its log in " + e.dir)
}

func (e *env) tearDown() {
	if e.sh != nil && e.sh.Process != nil {
		e.sh.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { e.sh.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			e.sh.Process.Kill()
		}
	}
	for _, si := range serviceImages {
		exec.Command("docker", "service", "rm", e.prefix+si[0]).Run()
	}
	if out, err := exec.Command("docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", e.ns+"/*").Output(); err == nil {
		if refs := strings.Fields(string(out)); len(refs) > 0 {
			exec.Command("docker", append([]string{"image", "rm", "-f"}, refs...)...).Run()
		}
	}
	os.RemoveAll(e.dir)
}

// sample is one measured push.
type sample struct {
	path  string
	round int
	// converged: from the push to the last new task running; done: to the
	// tool's own end (script exit, job finished).
	converged, done time.Duration
	// stages: name -> duration; gaps: swarmhook's time outside stages.
	stages map[string]time.Duration
	order  []string
	intake time.Duration
	gaps   time.Duration
	gapSum bool // gaps is meaningful (sequential swarmhook)
}

// once pushes one commit and takes it through path.
func (e *env) once(ctx context.Context, path string) (sample, error) {
	commit := e.commit()
	t0 := time.Now()
	s := sample{path: path}
	var want map[string]string
	switch path {
	case pathShell:
		steps := filepath.Join(e.dir, "steps.log")
		os.Remove(steps)
		services := ""
		for _, si := range serviceImages {
			services += e.prefix + si[0] + "=" + si[1] + " "
		}
		ts, err := e.shell(ctx, commit, services, steps)
		if err != nil {
			return s, err
		}
		s.done = time.Since(t0)
		if want, err = e.shellDigests(ts); err != nil {
			return s, err
		}
		s.stages, s.order = readSteps(steps)
	default:
		branch := "main"
		if path == pathOverlap {
			// The overlap target deploys branch overlap: point it at the
			// same commit, so both paths build and deploy the same source.
			branch = branchOverlap
			if err := git(e.origin, "branch", "-f", branchOverlap, commit); err != nil {
				return s, err
			}
		}
		id, err := e.push(branch, commit)
		if err != nil {
			return s, err
		}
		j, err := e.waitJob(ctx, id)
		if err != nil {
			return s, err
		}
		s.done = j.Finished.Sub(t0)
		want = map[string]string{}
		for _, si := range serviceImages {
			for _, im := range j.Images {
				if strings.HasSuffix(im.Name, "/"+si[1]) {
					want[e.prefix+si[0]] = im.Digest
				}
			}
		}
		s.stages, s.order, s.intake, s.gaps = breakdown(j, t0)
		s.gapSum = path == pathSequential
	}
	at, err := e.convergedAt(ctx, want)
	if err != nil {
		return s, err
	}
	s.converged = at.Sub(t0)
	return s, nil
}

// shell runs reference.sh for commit and returns the tag stamp it used.
func (e *env) shell(ctx context.Context, commit, services, stepLog string) (string, error) {
	var images []string
	for _, img := range imageNames {
		images = append(images, img+"="+img)
	}
	cmd := exec.CommandContext(ctx, "bash", e.o.reference, e.ciDir, commit, e.ns, strings.Join(images, " "), services)
	cmd.Env = append(os.Environ(), "STEP_LOG="+stepLog)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("reference.sh: %v: %s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// shellDigests asks the registry which digest each service's image tag
// of the shell run points at.
func (e *env) shellDigests(stamp string) (map[string]string, error) {
	want := map[string]string{}
	for _, si := range serviceImages {
		repo := strings.TrimPrefix(e.ns, e.o.registry+"/") + "/" + si[1]
		req, _ := http.NewRequest(http.MethodHead, "http://"+e.o.registry+"/v2/"+repo+"/manifests/main-"+stamp, nil)
		req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		d := resp.Header.Get("Docker-Content-Digest")
		if resp.StatusCode != http.StatusOK || d == "" {
			return nil, fmt.Errorf("registry: %s:main-%s: %s", repo, stamp, resp.Status)
		}
		want[e.prefix+si[0]] = d
	}
	return want, nil
}

// readSteps reads reference.sh's step log.
func readSteps(path string) (map[string]time.Duration, []string) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	out := map[string]time.Duration{}
	var order []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		start, _ := strconv.ParseFloat(fields[len(fields)-2], 64)
		end, _ := strconv.ParseFloat(fields[len(fields)-1], 64)
		name := strings.Join(fields[:len(fields)-2], " ")
		out[name] = time.Duration((end - start) * float64(time.Second))
		order = append(order, name)
	}
	return out, order
}

// push sends a signed GitHub push delivery for commit and returns the job
// it started.
func (e *env) push(branch, commit string) (int64, error) {
	body, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/" + branch, "after": commit, "before": strings.Repeat("0", 40),
		"repository":  map[string]any{"name": "app", "full_name": "bench/app"},
		"pusher":      map[string]any{"name": "bench"},
		"head_commit": map[string]any{"id": commit, "message": "bench"},
	})
	req, _ := http.NewRequest(http.MethodPost, e.shURL+"/hooks/bench", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", randomHex(8))
	req.Header.Set("X-Hub-Signature-256", webhook.Sign(e.secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var a struct {
		Job int64 `json:"job"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &a) != nil || a.Job == 0 {
		return 0, fmt.Errorf("webhook: %s %s", resp.Status, b)
	}
	return a.Job, nil
}

// job is the part of swarmhook's job record the benchmark reads.
type job struct {
	ID                         int64
	Status, Error, Commit      string
	Created, Started, Finished time.Time
	Stages                     []struct {
		Name              string
		Started, Finished time.Time
	}
	Images   []struct{ Name, Digest string }
	Services []struct{ Service, Outcome string }
}

func (e *env) getJob(id int64) (job, error) {
	var j job
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/jobs/%d", e.shURL, id), nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return j, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return j, fmt.Errorf("GET job %d: %s", id, resp.Status)
	}
	return j, json.NewDecoder(resp.Body).Decode(&j)
}

// waitJob polls the job until it ends; only its own timestamps are used,
// so the polling interval does not enter the numbers.
func (e *env) waitJob(ctx context.Context, id int64) (job, error) {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		j, err := e.getJob(id)
		if err != nil {
			return j, err
		}
		switch j.Status {
		case "queued", "running":
		case "succeeded":
			return j, nil
		default:
			return j, fmt.Errorf("job %d %s: %s (log in %s)", id, j.Status, j.Error, e.dir)
		}
		time.Sleep(250 * time.Millisecond)
	}
	return job{}, fmt.Errorf("job %d did not end in 10 minutes", id)
}

// breakdown turns a job's record into stage durations, the intake time
// (push sent to job recorded) and the time spent between stages: from the
// job's record to its first stage, between stages, and after the last.
func breakdown(j job, t0 time.Time) (map[string]time.Duration, []string, time.Duration, time.Duration) {
	stages := map[string]time.Duration{}
	var order []string
	prevEnd := j.Created
	var gaps time.Duration
	sorted := slices.Clone(j.Stages)
	slices.SortStableFunc(sorted, func(a, b struct {
		Name              string
		Started, Finished time.Time
	}) int {
		return a.Started.Compare(b.Started)
	})
	for _, s := range sorted {
		stages[s.Name] = s.Finished.Sub(s.Started)
		order = append(order, s.Name)
		if d := s.Started.Sub(prevEnd); d > 0 {
			gaps += d
		}
		if s.Finished.After(prevEnd) {
			prevEnd = s.Finished
		}
	}
	if d := j.Finished.Sub(prevEnd); d > 0 {
		gaps += d
	}
	return stages, order, j.Created.Sub(t0), gaps
}

// convergedAt waits until every service runs want's digest on all its
// replicas and returns when the last of those tasks started running,
// by Swarm's own task status times.
func (e *env) convergedAt(ctx context.Context, want map[string]string) (time.Time, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		last, why, err := e.converged(ctx, want)
		if err != nil {
			return time.Time{}, err
		}
		if why == "" {
			return last, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("services did not converge: %s", why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *env) converged(ctx context.Context, want map[string]string) (time.Time, string, error) {
	var last time.Time
	for svc, digest := range want {
		if digest == "" {
			return last, "", fmt.Errorf("no digest for %s", svc)
		}
		tasks, err := e.docker.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
			filters.Arg("service", svc), filters.Arg("desired-state", "running"))})
		if err != nil {
			return last, "", err
		}
		n := 0
		for _, t := range tasks {
			if t.Spec.ContainerSpec == nil || imageref.Digest(t.Spec.ContainerSpec.Image) != digest {
				return last, fmt.Sprintf("%s has a task on %s", svc, imageOf(t)), nil
			}
			if t.Status.State != swarm.TaskStateRunning {
				return last, fmt.Sprintf("%s has a task %s", svc, t.Status.State), nil
			}
			n++
			if t.Status.Timestamp.After(last) {
				last = t.Status.Timestamp
			}
		}
		if n != replicas {
			return last, fmt.Sprintf("%s runs %d/%d", svc, n, replicas), nil
		}
	}
	return last, "", nil
}

func imageOf(t swarm.Task) string {
	if t.Spec.ContainerSpec == nil {
		return "?"
	}
	return t.Spec.ContainerSpec.Image
}

// burstResult is one path's answer to a burst of pushes.
type burstResult struct {
	path      string
	builds    int
	fromFirst time.Duration // first push to last commit converged
	fromLast  time.Duration // last push to last commit converged
}

// burstOf sends o.burst pushes to main o.burstGap apart and waits until
// the last commit runs everywhere. The shell path is a CI runner with one
// executor running the script for every push in order; swarmhook gets
// one delivery per push.
func (e *env) burstOf(ctx context.Context, path string) (burstResult, error) {
	r := burstResult{path: path}
	commits := make(chan string, e.o.burst)
	var ids []int64
	var first, last time.Time
	var mu sync.Mutex
	var lastStamp string
	var runErr error
	var wg sync.WaitGroup
	if path == pathShell {
		wg.Add(1)
		go func() { // the CI executor
			defer wg.Done()
			services := ""
			for _, si := range serviceImages {
				services += e.prefix + si[0] + "=" + si[1] + " "
			}
			for c := range commits {
				ts, err := e.shell(ctx, c, services, "")
				mu.Lock()
				r.builds++
				lastStamp = ts
				if err != nil && runErr == nil {
					runErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < e.o.burst; i++ {
		if i > 0 {
			time.Sleep(e.o.burstGap)
		}
		c := e.commit()
		last = time.Now()
		if i == 0 {
			first = last
		}
		if path == pathShell {
			commits <- c
			continue
		}
		id, err := e.push("main", c)
		if err != nil {
			return r, err
		}
		ids = append(ids, id)
	}
	close(commits)
	wg.Wait()
	var want map[string]string
	if path == pathShell {
		if runErr != nil {
			return r, runErr
		}
		var err error
		if want, err = e.shellDigests(lastStamp); err != nil {
			return r, err
		}
	} else {
		j, err := e.waitJob(ctx, ids[len(ids)-1])
		if err != nil {
			return r, err
		}
		want = map[string]string{}
		for _, si := range serviceImages {
			for _, im := range j.Images {
				if strings.HasSuffix(im.Name, "/"+si[1]) {
					want[e.prefix+si[0]] = im.Digest
				}
			}
		}
		for _, id := range ids {
			j, err := e.getJob(id)
			if err != nil {
				return r, err
			}
			if !j.Started.IsZero() {
				r.builds++
			}
		}
	}
	at, err := e.convergedAt(ctx, want)
	if err != nil {
		return r, err
	}
	r.fromFirst, r.fromLast = at.Sub(first), at.Sub(last)
	return r, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// median of durations or ratios; the mean of the middle two for an even count.
func median[T time.Duration | float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
func ms(d time.Duration) string   { return fmt.Sprintf("%d ms", d.Milliseconds()) }

// machine describes where the benchmark ran.
func (e *env) machine() []string {
	var lines []string
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	lines = append(lines, fmt.Sprintf("%d cores (%s), %s/%s, %s", runtime.NumCPU(), cpu, runtime.GOOS, runtime.GOARCH, runtime.Version()))
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		lines = append(lines, strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1]+" kB memory")
	}
	if out, err := exec.Command("docker", "version", "--format", "engine {{.Server.Version}} (API {{.Server.APIVersion}}), CLI {{.Client.Version}}").Output(); err == nil {
		lines = append(lines, strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command("uptime").Output(); err == nil {
		lines = append(lines, "load at the end: "+strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		lines = append(lines, "swarmhook at "+strings.TrimSpace(string(out)))
	}
	return lines
}

// report renders the results as Markdown.
func (e *env) report(samples []sample, bursts []burstResult) string {
	var b strings.Builder
	byPath := map[string][]sample{}
	for _, s := range samples {
		byPath[s.path] = append(byPath[s.path], s)
	}
	fmt.Fprintf(&b, "# Pipeline benchmark results\n\nWritten by `bench/run.sh` at %s. See bench/README.md (\"Pipeline vs shell\") for what is measured and why.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	b.WriteString("## Machine\n\n")
	for _, l := range e.machine() {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	b.WriteString("- **Shared**: other work (builds and tests of four other developers' sessions) ran on the same 2 cores, engine and Swarm at the same time, so absolute times vary by tens of percent between runs; the paths ran alternately so each pair saw similar load.\n\n")
	fmt.Fprintf(&b, "## Command\n\n```sh\n%s\n# which builds swarmhook, the app and this driver, then runs:\n# pipeline -runs %d -build-sleep %s -burst %d -burst-gap %s -skip-burst=%v -skip-overlap=%v -unchanged %d -reference bench/pipeline/reference.sh\n```\n\n",
		cmp.Or(os.Getenv("BENCH_COMMAND"), "bench/run.sh"), e.o.runs, e.o.sleep, e.o.burst, e.o.burstGap, e.o.skipBurst, e.o.skipOverlap, e.o.unchanged)
	fmt.Fprintf(&b, "App: the static Go web app `internal/testenv/testapp` in two images (`api`, `web`), each `FROM swarmhook-test/busybox:latest` with `RUN sleep %g` standing in for a compile step; "+
		"three services (`api` and `worker` run `api`, `web` runs `web`), %d replicas each, update parallelism 1, delay 0, monitor %s, stop-first, no published ports. "+
		"Every run pushes a new commit changing both images. %d measured runs per path after one warm-up each, in rotating order.\n\n",
		e.o.sleep.Seconds(), replicas, updateMonitor, e.o.runs)

	b.WriteString("## Single push: push to every service converged on the new digest\n\n")
	b.WriteString("| path | median converged | runs (s) | median tool done |\n| --- | --- | --- | --- |\n")
	for _, p := range paths {
		var cs, ds []time.Duration
		var runs []string
		for _, s := range byPath[p] {
			cs, ds = append(cs, s.converged), append(ds, s.done)
			runs = append(runs, fmt.Sprintf("%.1f", s.converged.Seconds()))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", label(p), secs(median(cs)), strings.Join(runs, ", "), secs(median(ds)))
	}
	b.WriteString("\nRatios, median of the per-round ratios (each round ran all three paths back to back):\n\n| ratio | median | per round |\n| --- | --- | --- |\n")
	for _, pair := range [][2]string{{pathSequential, pathShell}, {pathOverlap, pathShell}, {pathOverlap, pathSequential}} {
		if len(byPath[pair[0]]) == 0 || len(byPath[pair[1]]) == 0 {
			continue
		}
		var rs []float64
		var per []string
		for i := range byPath[pair[0]] {
			if i >= len(byPath[pair[1]]) {
				break
			}
			r := byPath[pair[0]][i].converged.Seconds() / byPath[pair[1]][i].converged.Seconds()
			rs = append(rs, r)
			per = append(per, fmt.Sprintf("%.2f", r))
		}
		fmt.Fprintf(&b, "| %s / %s | **%.2f** | %s |\n", label(pair[0]), label(pair[1]), median(rs), strings.Join(per, ", "))
	}

	b.WriteString("\n## Stage breakdown (medians)\n\n")
	b.WriteString("swarmhook's from its own job record (`GET /api/jobs/{id}`); the shell's from `STEP_LOG` timestamps taken inside reference.sh. ")
	b.WriteString("Intake is the webhook sent to the job recorded.\n\n")
	seqStages := stageMedians(byPath[pathSequential])
	shStages := stageMedians(byPath[pathShell])
	b.WriteString("| stage | swarmhook | shell |\n| --- | --- | --- |\n")
	var intakes, gaps []time.Duration
	for _, s := range byPath[pathSequential] {
		intakes, gaps = append(intakes, s.intake), append(gaps, s.gaps)
	}
	fmt.Fprintf(&b, "| intake | %s | (CI server's webhook handling: not measured) |\n", ms(median(intakes)))
	shFetch := shStages["fetch"]
	fmt.Fprintf(&b, "| fetch | %s | %s |\n", ms(seqStages["fetch"]), ms(shFetch))
	var shBuild, shPush, shTag, shLatest time.Duration
	for _, img := range imageNames {
		shBuild += shStages["build "+img]
		shPush += shStages["push "+img]
		shTag += shStages["tag "+img]
		shLatest += shStages["push-latest "+img]
	}
	fmt.Fprintf(&b, "| build (both images) | %s | %s |\n", ms(seqStages["build"]), ms(shBuild))
	fmt.Fprintf(&b, "| push timestamped tags | %s | %s |\n", ms(seqStages["push"]), ms(shPush))
	fmt.Fprintf(&b, "| move -latest | %s (manifest PUT) | %s (docker tag) + %s (second push) |\n", ms(seqStages["tag"]), ms(shTag), ms(shLatest))
	for _, si := range serviceImages {
		fmt.Fprintf(&b, "| deploy %s | %s | %s |\n", si[0], ms(seqStages["deploy "+e.prefix+si[0]]), ms(shStages["deploy "+e.prefix+si[0]]))
	}
	var maxGap time.Duration
	for _, g := range gaps {
		maxGap = max(maxGap, g)
	}
	fmt.Fprintf(&b, "| **sum of gaps between stages** | **%s** (max %s over %d runs) | |\n\n", ms(median(gaps)), ms(maxGap), len(gaps))
	b.WriteString("Gaps are swarmhook's time outside any stage: from the job's record to its first stage, between stages, and from the last stage to the job's end. ")
	b.WriteString("Deploy stages end when swarmhook has seen Swarm complete the update (after its monitor period) and every task run the new spec; the shell's when `docker service update` returns.\n\n")

	if ov := byPath[pathOverlap]; len(ov) > 0 {
		b.WriteString("### overlap: stage timeline of the median run\n\n")
		sorted := slices.Clone(ov)
		slices.SortFunc(sorted, func(a, b sample) int { return cmp.Compare(a.converged, b.converged) })
		m := sorted[len(sorted)/2]
		b.WriteString("| stage | ms |\n| --- | --- |\n")
		for _, name := range m.order {
			fmt.Fprintf(&b, "| %s | %d |\n", strings.ReplaceAll(name, e.prefix, ""), m.stages[name].Milliseconds())
		}
		b.WriteString("\n(Stages in start order; the `web` image's build and push run while `api` rolls.)\n\n")
	}

	if len(bursts) > 0 {
		fmt.Fprintf(&b, "## Burst: %d pushes to main, %s apart\n\n", e.o.burst, e.o.burstGap)
		b.WriteString("| path | builds run | first push to last commit live | last push to last commit live |\n| --- | --- | --- | --- |\n")
		for _, r := range bursts {
			fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", label(r.path), r.builds, secs(r.fromFirst), secs(r.fromLast))
		}
		b.WriteString("\nThe shell path is a CI runner with one executor running the script for every push in order; swarmhook coalesces pushes that wait behind a running build into one.\n")
	}
	return b.String()
}

func label(p string) string {
	switch p {
	case pathShell:
		return "shell (reference.sh)"
	case pathSequential:
		return "swarmhook"
	default:
		return "swarmhook, pipeline: overlap"
	}
}

func stageMedians(ss []sample) map[string]time.Duration {
	all := map[string][]time.Duration{}
	for _, s := range ss {
		for n, d := range s.stages {
			all[n] = append(all[n], d)
		}
	}
	out := map[string]time.Duration{}
	for n, ds := range all {
		out[n] = median(ds)
	}
	return out
}

// rebuild is one push of a commit swarmhook had built and deployed.
type rebuild struct {
	job       time.Duration // the job's own record: created to finished
	done      time.Duration // push sent to job finished
	outcomes  []string
	restarted int      // services whose version or UpdatedAt changed
	stages    []string // name ms, in order
	gaps      time.Duration
}

// unchangedRuns deploys one new commit through swarmhook (not timed),
// then pushes that same commit o.unchanged times more, each a new
// delivery, and records what each job did and whether Swarm changed any
// service.
func (e *env) unchangedRuns(ctx context.Context) ([]rebuild, error) {
	commit := e.commit()
	id, err := e.push("main", commit)
	if err != nil {
		return nil, err
	}
	if _, err := e.waitJob(ctx, id); err != nil {
		return nil, err
	}
	var out []rebuild
	for i := 0; i < e.o.unchanged; i++ {
		before, err := e.serviceVersions(ctx)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		id, err := e.push("main", commit)
		if err != nil {
			return nil, err
		}
		j, err := e.waitJob(ctx, id)
		if err != nil {
			return nil, err
		}
		r := rebuild{job: j.Finished.Sub(j.Created), done: j.Finished.Sub(t0)}
		for _, s := range j.Services {
			r.outcomes = append(r.outcomes, s.Outcome)
		}
		for _, s := range j.Stages {
			r.stages = append(r.stages, fmt.Sprintf("%s %d", strings.ReplaceAll(s.Name, e.prefix, ""), s.Finished.Sub(s.Started).Milliseconds()))
		}
		_, _, _, r.gaps = breakdown(j, t0)
		after, err := e.serviceVersions(ctx)
		if err != nil {
			return nil, err
		}
		for svc, v := range before {
			if after[svc] != v {
				r.restarted++
			}
		}
		logf("unchanged rebuild %d: job %.2fs, outcomes %v, %d services changed", i+1, r.job.Seconds(), r.outcomes, r.restarted)
		out = append(out, r)
	}
	return out, nil
}

// serviceVersions is each service's spec version and last update time.
func (e *env) serviceVersions(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	for _, si := range serviceImages {
		svc, _, err := e.docker.ServiceInspectWithRaw(ctx, e.prefix+si[0], swarm.ServiceInspectOptions{})
		if err != nil {
			return nil, err
		}
		out[si[0]] = fmt.Sprintf("%d %s", svc.Version.Index, svc.UpdatedAt)
	}
	return out, nil
}

func reportRebuilds(rs []rebuild) string {
	if len(rs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n## Rebuild of an unchanged commit\n\n")
	b.WriteString("The commit swarmhook last deployed, pushed again (a new delivery): it builds the same digest, every service is `unchanged` and Swarm restarts nothing.\n\n")
	b.WriteString("| run | job (record) | push to job done | stages (ms) | gaps | outcomes | services changed |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for i, r := range rs {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %d |\n", i+1, ms(r.job), ms(r.done), strings.Join(r.stages, ", "), ms(r.gaps), strings.Join(r.outcomes, ", "), r.restarted)
	}
	return b.String()
}
