package job

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmhook/swarmhook/builder"
	"github.com/swarmhook/swarmhook/updater"
)

// heldBuilds is the recorder with a hand on the clock: the build of each
// ref in holds waits until the update of the service named with it has
// returned (or the build is cancelled, or 3 s pass).
type heldBuilds struct {
	*recorder
	holds   map[string]chan struct{} // build ref -> closed by the update below
	release map[string]chan struct{} // service -> the hold its update opens
}

func newHeldBuilds(rec *recorder, ref, afterService string) *heldBuilds {
	ch := make(chan struct{})
	return &heldBuilds{recorder: rec, holds: map[string]chan struct{}{ref: ch}, release: map[string]chan struct{}{afterService: ch}}
}

func (h *heldBuilds) Build(ctx context.Context, req builder.Request, w io.Writer) (string, error) {
	if ch, ok := h.holds[req.Tags[0]]; ok {
		select {
		case <-ch:
		case <-ctx.Done():
			h.note("build cancelled " + req.Tags[0])
			return "", context.Cause(ctx)
		case <-time.After(3 * time.Second):
			return "", errors.New("held build was never released: its service did not roll first")
		}
	}
	return h.recorder.Build(ctx, req, w)
}

func (h *heldBuilds) Update(ctx context.Context, req updater.Request, w io.Writer) (updater.Result, error) {
	res, err := h.recorder.Update(ctx, req, w)
	if ch, ok := h.release[req.Service]; ok {
		delete(h.release, req.Service)
		close(ch)
	}
	return res, err
}

func (h *heldBuilds) use(d *Deps) { d.Builder, d.Updater = h, h }

// overlapConfig is shopConfig with pipeline: overlap; services names the
// deploy order.
func overlapConfig(services string) string {
	cfg := strings.Replace(shopConfig, "services: [{name: api, image: shop/api}, worker, {name: web, image: shop/web}]", "services: "+services, 1)
	return cfg + "        pipeline: overlap\n"
}

var mainPush = Request{Project: "shop", Trigger: TriggerPush, Ref: "refs/heads/main", Branch: "main", Commit: "c0ffee"}

const webRef = "reg:5000/shop/web:main-20261126101500"

func TestOverlapRollsFirstServiceWhileLaterImageBuilds(t *testing.T) {
	rec := newRecorder()
	rec.current["worker"] = "reg:5000/shop/api:main-20261101000000@sha256:old"
	held := newHeldBuilds(rec, webRef, "api") // web's image builds only once api has rolled
	j := runWithDeps(t, rec, overlapConfig("[{name: api, image: shop/api}, worker, {name: web, image: shop/web}]"), mainPush, held.use)
	if j.Status != Succeeded {
		t.Fatalf("status %s: %s (calls %v)", j.Status, j.Error, rec.calls)
	}
	at := func(call string) int {
		i := slices.Index(rec.calls, call)
		if i < 0 {
			t.Fatalf("no call %q in %v", call, rec.calls)
		}
		return i
	}
	before := [][2]string{
		{"checkout refs/heads/main c0ffee", "build reg:5000/shop/api:main-20261126101500"},
		{"push reg:5000/shop/api:main-20261126101500", "update api reg:5000/shop/api"},
		{"update api reg:5000/shop/api", "build " + webRef},
		{"update api reg:5000/shop/api", "update worker reg:5000/shop/api"},
		{"update worker reg:5000/shop/api", "update web reg:5000/shop/web"},
		{"push " + webRef, "update web reg:5000/shop/web"},
		// -latest moves once every service runs the build.
		{"update web reg:5000/shop/web", "retag shop/api main-latest"},
		{"update web reg:5000/shop/web", "retag shop/web main-latest"},
	}
	for _, b := range before {
		if at(b[0]) > at(b[1]) {
			t.Errorf("%q came after %q: %v", b[0], b[1], rec.calls)
		}
	}
	var stages []string
	for _, s := range j.Stages {
		stages = append(stages, s.Name)
	}
	for _, want := range []string{"fetch", "build shop/api", "push shop/api", "build shop/web", "push shop/web", "deploy api", "deploy worker", "deploy web", "tag"} {
		if !slices.Contains(stages, want) {
			t.Errorf("stage %q missing from %v", want, stages)
		}
	}
	for _, s := range j.Services {
		if s.Outcome != updater.Updated {
			t.Errorf("service %s: %s", s.Service, s.Outcome)
		}
	}
	if j.Images[1].Ref != webRef+"@"+j.Images[1].Digest || j.Images[1].Digest == "" {
		t.Errorf("web image = %+v", j.Images[1])
	}
}

func TestOverlapLaterBuildFailureStopsTheDeploy(t *testing.T) {
	tests := []struct {
		name     string
		extra    string
		reverted []string
	}{
		{name: "stop", extra: ""},
		{name: "rollback_all", extra: "        on_failure: rollback_all\n", reverted: []string{"api"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			rec.current = map[string]string{"api": "reg:5000/shop/api:old@sha256:a0", "worker": "reg:5000/shop/api:old@sha256:a0"}
			rec.failOn["build "+webRef] = errors.New("step 3: exit code 1")
			held := newHeldBuilds(rec, webRef, "api") // web's build fails after api rolled
			cfg := overlapConfig("[{name: api, image: shop/api}, {name: web, image: shop/web}, worker]") + tt.extra
			j := runWithDeps(t, rec, cfg, mainPush, held.use)
			if j.Status != Failed || !strings.Contains(j.Error, "build: image shop/web: step 3: exit code 1") {
				t.Fatalf("status %s, error %q; want failed naming web's build", j.Status, j.Error)
			}
			got := map[string]updater.Outcome{}
			for _, s := range j.Services {
				got[s.Service] = s.Outcome
			}
			want := map[string]updater.Outcome{"api": updater.Updated, "web": updater.Skipped, "worker": updater.Skipped}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("service outcomes (-want +got):\n%s", diff)
			}
			for _, c := range rec.calls {
				if c == "update worker reg:5000/shop/api" || strings.HasPrefix(c, "update web") || c == "push "+webRef || strings.HasPrefix(c, "retag") {
					t.Errorf("%q ran after web's build failed: %v", c, rec.calls)
				}
			}
			var reverted []string
			for _, r := range j.Reverted {
				reverted = append(reverted, r.Service)
			}
			if diff := cmp.Diff(tt.reverted, reverted); diff != "" {
				t.Errorf("reverted (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOverlapFailedUpdateStopsLaterBuilds(t *testing.T) {
	rec := newRecorder()
	rec.failOn["update api reg:5000/shop/api"] = errors.New("rolled back by swarm")
	// web's build waits for a release that never comes: only the
	// cancellation after api's failed update lets it end.
	held := newHeldBuilds(rec, webRef, "nobody")
	j := runWithDeps(t, rec, overlapConfig("[{name: api, image: shop/api}, {name: web, image: shop/web}]"), mainPush, held.use)
	if j.Status != Failed || !strings.Contains(j.Error, "deploy api") {
		t.Fatalf("status %s, error %q; want failed at deploy api", j.Status, j.Error)
	}
	if !slices.Contains(rec.calls, "build cancelled "+webRef) {
		t.Errorf("web's build was not cancelled: %v", rec.calls)
	}
	for _, c := range rec.calls {
		if c == "push "+webRef || strings.HasPrefix(c, "update web") || strings.HasPrefix(c, "retag") {
			t.Errorf("%q ran after api's update failed", c)
		}
	}
}

func TestOverlapUnknownServiceImageFailsBeforeBuilding(t *testing.T) {
	rec := newRecorder()
	rec.current["worker"] = "docker.io/library/nginx:1"
	j := runWith(t, rec, overlapConfig("[{name: api, image: shop/api}, worker]"), mainPush)
	if j.Status != Failed || !strings.Contains(j.Error, "none of project shop's images") {
		t.Fatalf("status %s, error %q", j.Status, j.Error)
	}
	for _, c := range rec.calls {
		if strings.HasPrefix(c, "build") || strings.HasPrefix(c, "update") {
			t.Errorf("%q ran though worker's image is unknown", c)
		}
	}
}
