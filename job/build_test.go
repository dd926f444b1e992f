package job

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmhook/swarmhook/builder"
)

// bufLogs keeps every job's log in memory.
type bufLogs struct {
	mu   sync.Mutex
	logs map[int64]*bytes.Buffer
}

func (b *bufLogs) Create(id int64) (io.WriteCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.logs == nil {
		b.logs = map[int64]*bytes.Buffer{}
	}
	b.logs[id] = &bytes.Buffer{}
	return nopCloser{b.logs[id]}, nil
}

func (b *bufLogs) text(id int64) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.logs[id].String()
}

const retryConfig = `
registry: {host: "reg:5000", retries: 2, retry_backoff: 1ms}
data_dir: %s
projects:
  - name: shop
    repo: file:///nowhere
    images: [{name: shop/api}]
    deploy: [{branch: main, services: [{name: api, image: shop/api}]}]
`

func TestPushRetriesTransientErrors(t *testing.T) {
	unavailable := fmt.Errorf("push x: %w: received unexpected HTTP status: 503 Service Unavailable", builder.ErrTransient)
	tests := []struct {
		name       string
		errs       []error
		wantStatus Status
		wantPushes int
		wantLog    []string
	}{
		{"503 twice then works", []error{unavailable, unavailable}, Succeeded, 3, []string{
			"attempt 1 of 3 failed with a transient error, retrying in 1ms: push x: builder: transient registry error: received unexpected HTTP status: 503",
			"attempt 2 of 3 failed with a transient error, retrying in 2ms",
			"attempt 3 of 3 succeeded",
		}},
		{"stays down", []error{unavailable, unavailable, unavailable}, Failed, 3, []string{"gave up after 3 attempts"}},
		{"denied is not retried", []error{errors.New("denied: requested access to the resource is denied")}, Failed, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			rec.pushErrs = tt.errs
			logs := &bufLogs{}
			j := runWithLogs(t, rec, retryConfig, Request{Project: "shop", Ref: "refs/heads/main", Branch: "main", Commit: "c0ffee"}, logs)
			if j.Status != tt.wantStatus {
				t.Fatalf("status %s (%s), want %s", j.Status, j.Error, tt.wantStatus)
			}
			pushes, moved, deployed := 0, false, false
			for _, c := range rec.calls {
				pushes += strings.Count(c, "push ")
				moved = moved || strings.HasPrefix(c, "retag")
				deployed = deployed || strings.HasPrefix(c, "update")
			}
			if pushes != tt.wantPushes {
				t.Errorf("%d pushes, want %d: %v", pushes, tt.wantPushes, rec.calls)
			}
			if ok := tt.wantStatus == Succeeded; moved != ok || deployed != ok {
				t.Errorf("-latest moved %v, deployed %v, for a job that %s", moved, deployed, j.Status)
			}
			log := logs.text(j.ID)
			for _, want := range tt.wantLog {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
		})
	}
}

const buildConfig = `
registry: {host: "reg:5000"}
data_dir: %s
projects:
  - name: shop
    repo: file:///nowhere
    build: {parallelism: 2, timeout: 50ms}
    images:
      - name: shop/api
        target: runtime
        no_cache: true
        labels: {com.example.team: shop}
        build_args: {VERSION: "{{branch}}-{{short_commit}}", AT: "{{timestamp}}", TAG: "{{tag}}", FULL: "{{commit}}"}
      - {name: shop/web, context: web}
`

func TestBuildOptions(t *testing.T) {
	rec := newRecorder()
	commit := strings.Repeat("ab", 20)
	j := runWith(t, rec, buildConfig, Request{Project: "shop", Ref: "refs/heads/main", Branch: "main", Commit: commit})
	if j.Status != Succeeded {
		t.Fatalf("status %s: %s", j.Status, j.Error)
	}
	i := slices.IndexFunc(rec.requests, func(r builder.Request) bool { return strings.Contains(r.Tags[0], "shop/api") })
	api := rec.requests[i]
	wantArgs := map[string]string{"VERSION": "main-abababababab", "AT": "20261126101500", "TAG": "main-20261126101500", "FULL": commit}
	if diff := cmp.Diff(wantArgs, api.BuildArgs); diff != "" {
		t.Errorf("build args (-want +got):\n%s", diff)
	}
	if api.Target != "runtime" || !api.NoCache {
		t.Errorf("target %q, no_cache %v", api.Target, api.NoCache)
	}
	for k, v := range map[string]string{
		"com.example.team": "shop", "org.opencontainers.image.revision": commit, "org.opencontainers.image.source": "file:///nowhere",
		"org.opencontainers.image.created": commitTime.Format(time.RFC3339), builder.ProjectLabel: "shop",
	} {
		if api.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, api.Labels[k], v)
		}
	}
}

func TestBuildsRunInParallelWithinTheTimeout(t *testing.T) {
	rec := newRecorder()
	logs := &bufLogs{}
	j := runWithDeps(t, rec, buildConfig, Request{Project: "shop", Ref: "refs/heads/main", Branch: "main", Commit: "c0ffee"}, func(d *Deps) {
		d.Logs = logs
		rec.gate = make(chan struct{}) // in the test's bubble (see runWithDeps)
	})
	// Nobody feeds the gate: both builds wait until the 50ms build
	// timeout cancels them. Both started, so they ran side by side: one
	// at a time, the second would never have begun.
	if j.Status != Failed || !strings.Contains(j.Error, "builds timed out after 50ms") {
		t.Fatalf("status %s, error %q; want the build timeout", j.Status, j.Error)
	}
	log := logs.text(j.ID)
	for _, want := range []string{"[shop/api] --- building reg:5000/shop/api", "[shop/web] --- building reg:5000/shop/web"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "push") {
		t.Errorf("a timed-out build pushed:\n%s", log)
	}
}

func TestLinePrefixer(t *testing.T) {
	var out bytes.Buffer
	p := &linePrefixer{w: &out, prefix: "[a] "}
	for _, chunk := range []string{"Step 1/2 ", ": FROM x\nStep", " 2/2\n", "tail"} {
		p.Write([]byte(chunk))
	}
	p.Flush()
	if want := "[a] Step 1/2 : FROM x\n[a] Step 2/2\n[a] tail\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}
