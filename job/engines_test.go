package job

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/engines"
	"github.com/swarmhook/swarmhook/updater"
)

// fakeEngine is one build engine of docker.builders: its builds fail
// with buildErr, and its pings with pingErr.
type fakeEngine struct {
	name              string
	buildErr, pingErr error
	mu                *sync.Mutex
	calls             *[]string
}

func (f fakeEngine) note(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	*f.calls = append(*f.calls, f.name+": "+call)
}

func (f fakeEngine) Build(_ context.Context, req builder.Request, _ io.Writer) (string, error) {
	f.note("build " + req.Tags[0] + " cache " + strings.Join(req.CacheFrom, ","))
	return "sha256:local", f.buildErr
}

func (f fakeEngine) Push(_ context.Context, ref string, _ io.Writer) (string, error) {
	f.note("push " + ref)
	return "sha256:" + strings.Repeat("a", 64), nil
}

func (f fakeEngine) Prune(_ context.Context, repo string, _ int, _ io.Writer) (int, error) {
	f.note("prune " + repo)
	return 0, nil
}

func (f fakeEngine) Ping(context.Context) error { return f.pingErr }

const enginesConfig = `
registry: {host: "reg:5000"}
data_dir: %s
docker:
  builders: [{name: a, host: "unix:///a"}, {name: b, host: "unix:///b"}, {name: gpu, host: "unix:///g", labels: {gpu: "yes"}}]
projects:
  - name: shop
    repo: file:///nowhere
    build: {on: %s}
    images: [{name: shop/api}, {name: shop/web}]
`

func TestJobBuildsPushesAndPrunesOnOneEngine(t *testing.T) {
	gone := errors.New("dial unix /a: connect: no such file or directory")
	tests := []struct {
		name       string
		on         string
		a, b       fakeEngine
		wantStatus Status
		wantEngine string
		wantCalls  []string
		wantLog    []string
	}{
		{"least busy matching", "{}", fakeEngine{}, fakeEngine{}, Succeeded, "a", []string{
			"a: build reg:5000/shop/api:main-20261126101500 cache reg:5000/shop/api:main-latest", "a: build reg:5000/shop/web:main-20261126101500 cache reg:5000/shop/web:main-latest", "a: push reg:5000/shop/api", "a: push reg:5000/shop/web", "a: prune reg:5000/shop/api", "a: prune reg:5000/shop/web",
		}, []string{"building on engine a"}},
		{"labels", `{gpu: "yes"}`, fakeEngine{}, fakeEngine{}, Succeeded, "gpu", nil, []string{"building on engine gpu"}},
		{"engine dies mid-build: built again on the other", "{}", fakeEngine{buildErr: errors.New("unexpected EOF"), pingErr: gone}, fakeEngine{}, Succeeded, "b", []string{
			"a: build reg:5000/shop/api", "b: build reg:5000/shop/api", "b: build reg:5000/shop/web", "b: push reg:5000/shop/api", "b: push reg:5000/shop/web", "b: prune reg:5000/shop/api", "b: prune reg:5000/shop/web",
		}, []string{"building on engine a", "engine a stopped answering during the build (image shop/api: unexpected EOF): it is marked down; building again on another engine", "building on engine b"}},
		{"a failing build is not retried", "{}", fakeEngine{buildErr: errors.New("RUN false: exit code 1")}, fakeEngine{}, Failed, "a", []string{
			"a: build reg:5000/shop/api",
		}, nil},
		{"retried once only", "{}", fakeEngine{buildErr: errors.New("EOF"), pingErr: gone}, fakeEngine{buildErr: errors.New("EOF"), pingErr: gone}, Failed, "b", []string{
			"a: build reg:5000/shop/api", "b: build reg:5000/shop/api",
		}, []string{"building again on another engine"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var calls []string
			gpu := fakeEngine{}
			var es []engines.Engine
			for _, f := range []struct {
				fakeEngine
				labels map[string]string
			}{{tt.a, nil}, {tt.b, nil}, {gpu, map[string]string{"gpu": "yes"}}} {
				f.mu, f.calls = &mu, &calls
				f.name = []string{"a", "b", "gpu"}[len(es)]
				es = append(es, engines.Engine{Name: f.name, Labels: f.labels, Builder: f.fakeEngine, Pruner: f.fakeEngine, Ping: f.Ping})
			}
			pool := engines.New(es, nil)
			rec, logs := newRecorder(), &bufLogs{}
			cfg := strings.Replace(enginesConfig, "%s}", tt.on+"}", 1)
			j := runWithDeps(t, rec, cfg, Request{Project: "shop", Ref: "refs/heads/main", Branch: "main", Commit: "c0ffee"}, func(d *Deps) {
				d.Logs, d.Builder, d.Engines = logs, nil, pool
			})
			if j.Status != tt.wantStatus {
				t.Fatalf("status %s (%s), want %s", j.Status, j.Error, tt.wantStatus)
			}
			if j.Engine != tt.wantEngine {
				t.Errorf("job.Engine = %q, want %q", j.Engine, tt.wantEngine)
			}
			if tt.wantCalls != nil {
				got := strings.Join(calls, "\n")
				// Builds run side by side; compare them as a set.
				for _, c := range tt.wantCalls {
					if !strings.Contains(got, c) {
						t.Errorf("no call %q in:\n%s", c, got)
					}
				}
				if len(calls) != len(tt.wantCalls) {
					t.Errorf("%d calls, want %d:\n%s", len(calls), len(tt.wantCalls), got)
				}
			}
			log := logs.text(j.ID)
			for _, want := range tt.wantLog {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
			for _, s := range pool.States() {
				if s.Running != 0 {
					t.Errorf("engine %s still leased after the job: %+v", s.Name, s)
				}
			}
		})
	}
}

// busyAtUpdate is an updater that notes how many jobs hold an engine
// when a service update starts.
type busyAtUpdate struct {
	*recorder
	pool *engines.Pool
	busy int
}

func (b *busyAtUpdate) Update(ctx context.Context, req updater.Request, w io.Writer) (updater.Result, error) {
	for _, s := range b.pool.States() {
		b.busy += s.Running
	}
	return b.recorder.Update(ctx, req, w)
}

func TestEngineGivenBackBeforeTheDeploy(t *testing.T) {
	f := fakeEngine{name: "a", mu: &sync.Mutex{}, calls: &[]string{}}
	pool := engines.New([]engines.Engine{{Name: "a", Builder: f, Pruner: f, Ping: f.Ping}}, nil)
	rec := newRecorder()
	up := &busyAtUpdate{recorder: rec, pool: pool}
	cfg := strings.Replace(enginesConfig, "%s}\n", "{}}\n    deploy: [{branch: main, services: [{name: api, image: shop/api}]}]\n", 1)
	j := runWithDeps(t, rec, cfg, Request{Project: "shop", Ref: "refs/heads/main", Branch: "main", Commit: "c0ffee"}, func(d *Deps) {
		d.Builder, d.Engines, d.Updater = nil, pool, up
	})
	if j.Status != Succeeded {
		t.Fatalf("status %s (%s)", j.Status, j.Error)
	}
	if up.busy != 0 {
		t.Errorf("%d engine leases held while the service updated, want 0", up.busy)
	}
}
