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

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

// gitStack is a project whose deploy target is a stack file in its
// repository: image <ns>/app is built from it, and side images pushed
// once (under localhost:5000, another name of the test registry, so
// they are not the project's) stand for images the file pins.
type gitStack struct {
	c     *client.Client
	ns    string
	name  string
	repo  *testenv.GitRepo
	sh    *testenv.Swarmhook
	side  string // localhost:5000/<ns>/side:v1@digest
	files map[string]string
	// token is the value of STACK_TOKEN in the target's env.
	token string
}

const stackSecret = "e2e-stack-secret"

func newGitStack(t *testing.T, target string) *gitStack {
	c := testenv.Require(t)
	ns := testenv.Unique("e2estack")
	s := &gitStack{c: c, ns: ns, name: strings.ReplaceAll(ns, ".", "-"), repo: testenv.NewGitRepo(t), token: testenv.Unique("tok-")}
	testenv.RemoveImagesOnCleanup(t, c, ns)
	pinned := testenv.BuildAndPush(t, c, fmt.Sprintf("%s/%s/side:v1", testenv.Registry(), ns), "side v1")
	s.side = "localhost:" + strings.SplitN(testenv.Registry(), ":", 2)[1] + strings.TrimPrefix(pinned, testenv.Registry())
	t.Cleanup(func() { removeStack(c, s.name) })
	s.sh = testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - name: app
    repo: %s
    secret: %s
    images:
      - {name: %s/app}
    deploy:
      - branch: main
        stack: {name: %s, file: deploy/compose.yml, env: {STACK_TOKEN: %q}}
        update: {parallelism: 1, delay: 0s, monitor: 1s}
        timeout: 2m
%s
`, testenv.Registry(), s.repo.URL(), stackSecret, ns, s.name, s.token, target))
	s.files = testenv.AppFiles(t, "app v1")
	s.files["Dockerfile"] = testenv.HealthyDockerfile
	return s
}

// removeStack removes what carries the stack's namespace label.
func removeStack(c *client.Client, name string) {
	ctx := context.Background()
	f := filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace="+name))
	svcs, _ := c.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	for _, s := range svcs {
		c.ServiceRemove(ctx, s.ID)
	}
	// Tasks must be gone before their configs, secrets and networks go.
	for range 60 {
		tasks, _ := c.TaskList(ctx, swarm.TaskListOptions{Filters: f})
		if len(tasks) == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	cs, _ := c.ConfigList(ctx, swarm.ConfigListOptions{Filters: f})
	for _, x := range cs {
		c.ConfigRemove(ctx, x.ID)
	}
	ss, _ := c.SecretList(ctx, swarm.SecretListOptions{Filters: f})
	for _, x := range ss {
		c.SecretRemove(ctx, x.ID)
	}
	for range 30 {
		ns, _ := c.NetworkList(ctx, network.ListOptions{Filters: f})
		for _, n := range ns {
			c.NetworkRemove(ctx, n.ID)
		}
		vs, _ := c.VolumeList(ctx, volume.ListOptions{Filters: f})
		for _, v := range vs.Volumes {
			c.VolumeRemove(ctx, v.Name, false)
		}
		if len(ns) == 0 && len(vs.Volumes) == 0 {
			return
		}
		time.Sleep(time.Second)
	}
}

// stackJob is the part of a job record these tests read.
type stackJob struct {
	Status   string `json:"status"`
	Error    string `json:"error"`
	Services []struct {
		Service string `json:"service"`
		Outcome string `json:"outcome"`
	} `json:"services"`
	Plan *struct {
		Changes []struct {
			Kind   string   `json:"kind"`
			Name   string   `json:"name"`
			Action string   `json:"action"`
			Fields []string `json:"fields"`
		} `json:"changes"`
	} `json:"plan"`
}

// push commits compose (and files) and waits for the job.
func (s *gitStack) push(t *testing.T, compose string, files map[string]string) (stackJob, string) {
	t.Helper()
	all := map[string]string{"deploy/compose.yml": compose}
	for k, v := range s.files {
		all[k] = v
	}
	for k, v := range files {
		all[k] = v
	}
	commit := s.repo.Commit("stack", all)
	code, body := s.sh.GitHubPush("app", stackSecret, testenv.GitHubPushBody("main", strings.Repeat("0", 40), commit, "stack"))
	var a struct{ Job int64 }
	if code != http.StatusAccepted || json.Unmarshal(body, &a) != nil {
		t.Fatalf("push: %d %s", code, body)
	}
	_, log := s.sh.WaitJob(a.Job, 4*time.Minute)
	_, raw := s.sh.API(http.MethodGet, fmt.Sprintf("/api/jobs/%d", a.Job), nil)
	var j stackJob
	if err := json.Unmarshal(raw, &j); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log, s.token) || strings.Contains(string(raw), s.token) || strings.Contains(s.sh.Output(), s.token) {
		t.Errorf("the job's log or record, or swarmhook's log, shows the value of STACK_TOKEN")
	}
	return j, log
}

// outcomes is service -> outcome, in the job's order as "svc=outcome".
func (j stackJob) outcomes() []string {
	var out []string
	for _, s := range j.Services {
		out = append(out, s.Service+"="+s.Outcome)
	}
	return out
}

// change finds the plan's change for kind/name.
func (j stackJob) change(kind, name string) (action string, fields []string) {
	if j.Plan == nil {
		return "", nil
	}
	for _, c := range j.Plan.Changes {
		if c.Kind == kind && c.Name == name {
			return c.Action, c.Fields
		}
	}
	return "", nil
}

func (s *gitStack) compose(services string, configs string) string {
	return "services:\n" + services + configs
}

func (s *gitStack) svc(name, image, env string, extra string) string {
	return fmt.Sprintf("  %s:\n    image: %s\n    environment: {GREETING: %q}\n    deploy:\n      placement:\n        constraints: [node.role==manager]\n%s",
		name, image, env, extra)
}

func (s *gitStack) configsOf(t *testing.T) []string {
	t.Helper()
	f := filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace="+s.name))
	cs, err := s.c.ConfigList(context.Background(), swarm.ConfigListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Spec.Name)
	}
	slices.Sort(names)
	return names
}

func (s *gitStack) service(t *testing.T, key string) (swarm.Service, bool) {
	t.Helper()
	svc, _, err := s.c.ServiceInspectWithRaw(context.Background(), s.name+"_"+key, swarm.ServiceInspectOptions{})
	return svc, err == nil
}

// TestStackFromGit walks one stack through the pushes the issue lists:
// created on the first, one env var updating one service, a service
// added in order, a config rotating, a service dropped but kept.
func TestStackFromGit(t *testing.T) {
	t.Parallel()
	s := newGitStack(t, "        services: [web]")
	app := s.ns + "/app"
	site := "    configs: [site]\n"
	configs := func(v string) (string, map[string]string) {
		return "configs:\n  site:\n    file: site.conf\n", map[string]string{"deploy/site.conf": v}
	}

	// 1. The first push creates the stack: web first (the target's
	// order), then api and side in file order.
	cfg, files := configs("v1")
	j, log := s.push(t, s.compose(s.svc("api", app, "hi", site)+s.svc("side", s.side, "hi", "")+s.svc("web", s.side, "hi", ""), cfg), files)
	if j.Status != "succeeded" {
		t.Fatalf("first push: %s: %s\n%s", j.Status, j.Error, testenv.TrimLines(log, 60))
	}
	want := []string{s.name + "_web=updated", s.name + "_api=updated", s.name + "_side=updated"}
	if got := j.outcomes(); !slices.Equal(got, want) {
		t.Errorf("first push outcomes %v, want %v", got, want)
	}
	for _, k := range []string{"web", "api", "side"} {
		svc, ok := s.service(t, k)
		if !ok {
			t.Fatalf("service %s_%s was not created", s.name, k)
		}
		if svc.Spec.Labels["com.docker.stack.namespace"] != s.name {
			t.Errorf("service %s lacks the namespace label: %v", k, svc.Spec.Labels)
		}
		if a, _ := j.change("service", s.name+"_"+k); a != "create" {
			t.Errorf("plan for %s: %q, want create", k, a)
		}
	}
	firstConfigs := s.configsOf(t)
	if len(firstConfigs) != 1 || !strings.HasPrefix(firstConfigs[0], s.name+"_site_") {
		t.Fatalf("configs %v, want one %s_site_<hash>", firstConfigs, s.name)
	}
	sideBefore, _ := s.service(t, "side")

	// 2. One env var of web changes: web updates that field only, side
	// stays as it is; api takes the new build's digest.
	j, log = s.push(t, s.compose(s.svc("api", app, "hi", site)+s.svc("side", s.side, "hi", "")+s.svc("web", s.side, "bye", ""), cfg), files)
	if j.Status != "succeeded" {
		t.Fatalf("env push: %s: %s\n%s", j.Status, j.Error, testenv.TrimLines(log, 60))
	}
	if a, f := j.change("service", s.name+"_web"); a != "update" || !slices.Equal(f, []string{"environment"}) {
		t.Errorf("plan for web: %s %v, want update [environment]", a, f)
	}
	if a, _ := j.change("service", s.name+"_side"); a != "unchanged" {
		t.Errorf("plan for side: %s, want unchanged", a)
	}
	if a, f := j.change("service", s.name+"_api"); a != "unchanged" && !slices.Equal(f, []string{"image"}) {
		t.Errorf("plan for api: %s %v, want at most its image changed", a, f)
	}
	if sideAfter, _ := s.service(t, "side"); sideAfter.Version.Index != sideBefore.Version.Index {
		t.Errorf("side's spec changed (version %d -> %d) though its part of the file did not", sideBefore.Version.Index, sideAfter.Version.Index)
	}
	web, _ := s.service(t, "web")
	if !slices.Contains(web.Spec.TaskTemplate.ContainerSpec.Env, "GREETING=bye") {
		t.Errorf("web env %v, want GREETING=bye", web.Spec.TaskTemplate.ContainerSpec.Env)
	}
	// The job waited for the new tasks: when it ended, every running
	// task of web had the new env.
	tasks, err := s.c.TaskList(context.Background(), swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", web.ID), filters.Arg("desired-state", "running"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		if !slices.Contains(tk.Spec.ContainerSpec.Env, "GREETING=bye") || tk.Status.State != swarm.TaskStateRunning {
			t.Errorf("web task %s is %s with env %v after the job, want running with GREETING=bye", tk.ID, tk.Status.State, tk.Spec.ContainerSpec.Env)
		}
	}

	// 3. A new service and a new config content: the config is created
	// under a new name and api moves to it; extra is created after the
	// services before it in the file. The old config stays while api's
	// previous spec (its rollback target) names it.
	cfg, files = configs("v2")
	j, log = s.push(t, s.compose(s.svc("api", app, "hi", site)+s.svc("side", s.side, "hi", "")+s.svc("extra", s.side, "hi", "")+s.svc("web", s.side, "bye", ""), cfg), files)
	if j.Status != "succeeded" {
		t.Fatalf("add push: %s: %s\n%s", j.Status, j.Error, testenv.TrimLines(log, 60))
	}
	want = []string{s.name + "_web=unchanged", s.name + "_api=updated", s.name + "_side=unchanged", s.name + "_extra=updated"}
	if got := j.outcomes(); !slices.Equal(got, want) {
		t.Errorf("add push outcomes %v, want %v", got, want)
	}
	if a, _ := j.change("service", s.name+"_extra"); a != "create" {
		t.Errorf("plan for extra: %s, want create", a)
	}
	if a, f := j.change("service", s.name+"_api"); a != "update" || !slices.Contains(f, "configs") {
		t.Errorf("plan for api: %s %v, want its configs changed", a, f)
	}
	rotated := s.configsOf(t)
	if len(rotated) != 2 || !slices.Contains(rotated, firstConfigs[0]) {
		t.Errorf("configs after rotation %v, want the new one beside %s (api's rollback target)", rotated, firstConfigs[0])
	}
	api, _ := s.service(t, "api")
	if ref := api.Spec.TaskTemplate.ContainerSpec.Configs; len(ref) != 1 || ref[0].ConfigName == firstConfigs[0] {
		t.Errorf("api still names config %v", ref)
	}

	// 4. extra is dropped from the file: without prune it keeps running.
	// api's update moves its rollback target past the first config,
	// which then goes.
	j, log = s.push(t, s.compose(s.svc("api", app, "hi", site)+s.svc("side", s.side, "hi", "")+s.svc("web", s.side, "bye", ""), cfg), files)
	if j.Status != "succeeded" {
		t.Fatalf("drop push: %s: %s\n%s", j.Status, j.Error, testenv.TrimLines(log, 60))
	}
	if a, _ := j.change("service", s.name+"_extra"); a != "keep" {
		t.Errorf("plan for the dropped extra: %s, want keep", a)
	}
	if _, ok := s.service(t, "extra"); !ok {
		t.Errorf("extra was removed without prune: true")
	}
	if got := s.configsOf(t); slices.Contains(got, firstConfigs[0]) || len(got) != 1 {
		t.Errorf("configs %v, want the first (%s) removed once nothing names it", got, firstConfigs[0])
	}

	// 5. A dry plan of a commit not pushed yet, by the API and the CLI,
	// shows side's change and changes nothing.
	all := map[string]string{"deploy/compose.yml": s.compose(s.svc("api", app, "hi", site)+s.svc("side", s.side, "dry", "")+s.svc("web", s.side, "bye", ""), cfg)}
	s.repo.Commit("not pushed", all)
	sideBefore, _ = s.service(t, "side")
	code, body := s.sh.Do(http.MethodPost, "/api/projects/app/plan", http.Header{"Authorization": {"Bearer " + testenv.ReadToken}, "Content-Type": {"application/json"}},
		[]byte(`{"branch":"main"}`))
	var dry stackJob
	if err := json.Unmarshal([]byte(`{"plan":`+string(body)+`}`), &dry); code != http.StatusOK || err != nil {
		t.Fatalf("plan: %d %s (%v)", code, body, err)
	}
	if a, f := dry.change("service", s.name+"_side"); a != "update" || !slices.Equal(f, []string{"environment"}) {
		t.Errorf("dry plan for side: %s %v, want update [environment]\n%s", a, f, body)
	}
	if a, _ := dry.change("service", s.name+"_api"); a != "unchanged" {
		t.Errorf("dry plan for api: %s, want unchanged (it runs main-latest)\n%s", a, body)
	}
	exit, out := s.sh.RunCommand("plan", "-config", s.sh.Config, "-project", "app", "-branch", "main")
	if exit != 0 || !strings.Contains(out, `"name": "`+s.name+`_side"`) {
		t.Errorf("swarmhook plan exited %d:\n%s", exit, out)
	}
	if sideAfter, _ := s.service(t, "side"); sideAfter.Version.Index != sideBefore.Version.Index {
		t.Errorf("a dry plan changed side")
	}
}

// TestStackRefusesAndStops: a file that reaches for the host fails its
// job before anything exists; a failed update stops the plan as an
// image update does, later services untouched.
func TestStackRefusesAndStops(t *testing.T) {
	t.Parallel()
	s := newGitStack(t, "        services: [api, web]")
	app := s.ns + "/app"

	bad := s.compose(s.svc("api", app, "hi", "    volumes: ['/var/run/docker.sock:/var/run/docker.sock']\n"), "")
	j, log := s.push(t, bad, nil)
	if j.Status != "failed" || !strings.Contains(j.Error, `deploy/compose.yml:8: services.api: volumes: bind mount of "/var/run/docker.sock" is not allowed`) {
		t.Errorf("bad file: job %s %q, want failed naming the file's line 8 and the key\n%s", j.Status, j.Error, testenv.TrimLines(log, 30))
	}
	if strings.Contains(log, "==> build") {
		t.Errorf("a refused file was still built:\n%s", testenv.TrimLines(log, 30))
	}
	svcs, err := s.c.ServiceList(context.Background(), swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace="+s.name))})
	if err != nil || len(svcs) != 0 {
		t.Errorf("a refused file left %d services (%v)", len(svcs), err)
	}

	good := s.compose(s.svc("api", app, "hi", "")+s.svc("web", s.side, "hi", ""), "")
	if j, log := s.push(t, good, nil); j.Status != "succeeded" {
		t.Fatalf("good push: %s: %s\n%s", j.Status, j.Error, testenv.TrimLines(log, 60))
	}
	webBefore, _ := s.service(t, "web")

	s.files["Dockerfile"] = testenv.UnhealthyDockerfile
	j, log = s.push(t, s.compose(s.svc("api", app, "hi", "")+s.svc("web", s.side, "changed", ""), ""), nil)
	want := []string{s.name + "_api=rolled_back", s.name + "_web=skipped"}
	if j.Status != "failed" || !slices.Equal(j.outcomes(), want) {
		t.Errorf("unhealthy push: job %s %v, want failed with %v\n%s", j.Status, j.outcomes(), want, testenv.TrimLines(log, 40))
	}
	if webAfter, _ := s.service(t, "web"); webAfter.Version.Index != webBefore.Version.Index {
		t.Errorf("web changed after api failed before it")
	}
	// The failed stack update is counted as an image update's would be.
	code, body := s.sh.Do(http.MethodGet, "/metrics", nil, nil)
	if want := `swarmhook_engine_errors_total{op="update"} 1`; code != http.StatusOK || !strings.Contains(string(body), want) {
		t.Errorf("/metrics (%d) lacks %s", code, want)
	}
}

// TestStackPrune: with prune: true a service dropped from the file is
// removed, after the others rolled out.
func TestStackPrune(t *testing.T) {
	t.Parallel()
	s := newGitStack(t, "        prune: true")
	secret := "secrets:\n  token:\n    environment: STACK_TOKEN\nvolumes:\n  data: {}\n"
	one := "    secrets: [token]\n    volumes: ['data:/data']\n"
	two := s.compose(s.svc("one", s.side, "hi", one)+s.svc("two", s.side, "hi", ""), secret)
	if j, log := s.push(t, two, nil); j.Status != "succeeded" {
		t.Fatalf("first push: %s: %s\n%s", j.Status, j.Error, testenv.TrimLines(log, 60))
	}
	// The secret comes from the target's env, under a hashed name.
	svc, _ := s.service(t, "one")
	if refs := svc.Spec.TaskTemplate.ContainerSpec.Secrets; len(refs) != 1 || !strings.HasPrefix(refs[0].SecretName, s.name+"_token_") {
		t.Errorf("one's secrets %+v, want %s_token_<hash>", refs, s.name)
	}
	// A named volume of the file is the stack's, labelled as such.
	vols, err := s.c.VolumeList(context.Background(), volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace="+s.name))})
	if err != nil || len(vols.Volumes) != 1 || vols.Volumes[0].Name != s.name+"_data" {
		t.Errorf("stack volumes %+v (%v), want %s_data", vols.Volumes, err, s.name)
	}
	j, log := s.push(t, s.compose(s.svc("one", s.side, "hi", one), secret), nil)
	if j.Status != "succeeded" {
		t.Fatalf("second push: %s: %s\n%s", j.Status, j.Error, testenv.TrimLines(log, 60))
	}
	if a, f := j.change("service", s.name+"_one"); a != "unchanged" {
		t.Errorf("plan for one: %s %v, want unchanged (its secret and volume as Swarm writes them back)", a, f)
	}
	if a, _ := j.change("service", s.name+"_two"); a != "remove" {
		t.Errorf("plan for two: %q, want remove", a)
	}
	if _, ok := s.service(t, "two"); ok {
		t.Errorf("two still exists with prune: true")
	}
	if _, ok := s.service(t, "one"); !ok {
		t.Errorf("one is gone")
	}
}

// TestStackServicesListedAndRolledBackToATag: a stack's services are
// managed services like any other: listed by GET /api/services with
// their state, offered their branch's tags, and one rolls back to a tag
// by its image alone while the rest of the stack stays as it is. A
// project-wide tag deploy to the stack target is refused, changing
// nothing.
func TestStackServicesListedAndRolledBackToATag(t *testing.T) {
	t.Parallel()
	s := newGitStack(t, "        services: [api]")
	app := s.ns + "/app"
	compose := s.compose(s.svc("api", app, "hi", "")+s.svc("side", s.side, "hi", ""), "")
	for _, v := range []string{"app v1", "app v2"} {
		s.files = testenv.AppFiles(t, v)
		s.files["Dockerfile"] = testenv.HealthyDockerfile
		if j, log := s.push(t, compose, nil); j.Status != "succeeded" {
			t.Fatalf("push of %s: %s: %s\n%s", v, j.Status, j.Error, testenv.TrimLines(log, 60))
		}
	}
	api, side := s.name+"_api", s.name+"_side"

	code, body := s.sh.API(http.MethodGet, "/api/services", nil)
	var list struct {
		Services []struct {
			Name    string `json:"name"`
			Image   string `json:"image"`
			Tag     string `json:"tag"`
			Digest  string `json:"digest"`
			Running uint64 `json:"running"`
			Tasks   []struct {
				Node  string `json:"node"`
				State string `json:"state"`
			} `json:"tasks"`
		} `json:"services"`
	}
	if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil {
		t.Fatalf("GET /api/services: %d %s", code, body)
	}
	var names []string
	for _, st := range list.Services {
		names = append(names, st.Name)
		if st.Name == api && (st.Digest == "" || !strings.HasPrefix(st.Tag, "main-") || st.Running != 1 || len(st.Tasks) != 1 || st.Tasks[0].Node == "") {
			t.Errorf("state of %s: %+v, want its main- tag, digest, one running task and its node", api, st)
		}
	}
	if !slices.Contains(names, api) || !slices.Contains(names, side) || slices.Contains(names, "api") {
		t.Errorf("GET /api/services lists %v, want %s and %s by their Swarm names", names, api, side)
	}

	code, body = s.sh.API(http.MethodGet, "/api/services/"+api+"/tags", nil)
	var cands struct {
		Tags []struct {
			Tag    string `json:"tag"`
			Status string `json:"status"`
		} `json:"tags"`
	}
	if err := json.Unmarshal(body, &cands); code != http.StatusOK || err != nil || len(cands.Tags) != 2 {
		t.Fatalf("tags of %s: %d %s, want the two builds' tags", api, code, body)
	}
	for _, c := range cands.Tags {
		if c.Status != "succeeded" {
			t.Errorf("candidate %s: %s, want succeeded", c.Tag, c.Status)
		}
	}
	older := cands.Tags[1].Tag
	sideBefore, _ := s.service(t, "side")
	apiBefore, _ := s.service(t, "api")

	code, body = s.sh.API(http.MethodPost, "/api/projects/app/deploy", []byte(`{"branch":"main","tag":"`+older+`"}`))
	if code != http.StatusBadRequest || !strings.Contains(string(body), "deploys stack "+s.name) {
		t.Errorf("tag deploy to the stack target: %d %s, want 400 saying it deploys stack %s", code, body, s.name)
	}
	if after, _ := s.service(t, "api"); after.Version.Index != apiBefore.Version.Index {
		t.Errorf("a refused tag deploy changed %s", api)
	}

	code, body = s.sh.API(http.MethodPost, "/api/services/"+api+"/rollback?wait=1", []byte(`{"tag":"`+older+`"}`))
	if code != http.StatusOK {
		t.Fatalf("rollback of %s to %s: %d %s", api, older, code, body)
	}
	after, _ := s.service(t, "api")
	cs := after.Spec.TaskTemplate.ContainerSpec
	if !strings.Contains(cs.Image, ":"+older+"@sha256:") {
		t.Errorf("%s runs %s after the rollback, want %s", api, cs.Image, older)
	}
	if !slices.Contains(cs.Env, "GREETING=hi") || after.Spec.Labels["com.docker.stack.namespace"] != s.name {
		t.Errorf("%s lost the rest of its stack spec: env %v, labels %v", api, cs.Env, after.Spec.Labels)
	}
	if sideAfter, _ := s.service(t, "side"); sideAfter.Version.Index != sideBefore.Version.Index {
		t.Errorf("%s changed when only %s rolled back", side, api)
	}
}
