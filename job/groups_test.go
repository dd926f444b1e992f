package job

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmhook/swarmhook/updater"
)

// meetingUpdates is the recorder as updater, where the members of one
// group wait for each other inside Update (for a minute of the bubble's
// time at most): if they roll at the same time both are in at once.
type meetingUpdates struct {
	*recorder
	group map[string]bool
	mu    sync.Mutex
	in    int
	most  int // the most group members inside Update at once
	met   chan struct{}
	ended []string // services whose Update returned, in order
}

func newMeetingUpdates(rec *recorder, group ...string) *meetingUpdates {
	m := &meetingUpdates{recorder: rec, group: map[string]bool{}, met: make(chan struct{})}
	for _, s := range group {
		m.group[s] = true
	}
	return m
}

func (m *meetingUpdates) Update(ctx context.Context, req updater.Request, w io.Writer) (updater.Result, error) {
	if m.group[req.Service] {
		m.mu.Lock()
		m.in++
		m.most = max(m.most, m.in)
		if m.in == len(m.group) {
			close(m.met)
		}
		m.mu.Unlock()
		select {
		case <-m.met:
		case <-ctx.Done():
		case <-time.After(time.Minute):
		}
	}
	res, err := m.recorder.Update(ctx, req, w)
	m.mu.Lock()
	if m.group[req.Service] {
		m.in--
	}
	m.ended = append(m.ended, req.Service)
	m.mu.Unlock()
	return res, err
}

func groupConfig(services, extra string) string {
	return strings.Replace(shopConfig, "services: [{name: api, image: shop/api}, worker, {name: web, image: shop/web}]", "services: "+services+"\n"+extra, 1)
}

func TestGroupMembersRollAtTheSameTime(t *testing.T) {
	rec := newRecorder()
	rec.current["worker"] = "reg:5000/shop/api:old@sha256:a0"
	m := newMeetingUpdates(rec, "api", "worker")
	cfg := groupConfig("[[{name: api, image: shop/api}, worker], {name: web, image: shop/web}]", "")
	j := runWithDeps(t, rec, cfg, Request{Project: "shop", Ref: "refs/heads/main", Branch: "main", Commit: "c0ffee"},
		func(d *Deps) { d.Updater = m })
	if j.Status != Succeeded {
		t.Fatalf("status %s: %s", j.Status, j.Error)
	}
	if m.most != 2 {
		t.Errorf("at most %d of api and worker updated at once, want both", m.most)
	}
	if len(m.ended) != 3 || m.ended[2] != "web" {
		t.Errorf("updates ended in order %v, want web after the api+worker group", m.ended)
	}
	var got []string
	for _, s := range j.Services {
		got = append(got, s.Service+" "+string(s.Outcome))
	}
	if diff := cmp.Diff([]string{"api updated", "worker updated", "web updated"}, got); diff != "" {
		t.Errorf("service outcomes (-want +got):\n%s", diff)
	}
	var stages []string
	for _, s := range j.Stages {
		if strings.HasPrefix(s.Name, "deploy") {
			stages = append(stages, s.Name)
		}
	}
	if diff := cmp.Diff([]string{"deploy api, worker", "deploy web"}, stages); diff != "" {
		t.Errorf("deploy stages (-want +got):\n%s", diff)
	}
}

func TestGroupFailureStopsTheNextGroup(t *testing.T) {
	tests := []struct {
		name     string
		extra    string
		reverted []string
	}{
		{name: "stop"},
		{name: "rollback_all", extra: "        on_failure: rollback_all\n", reverted: []string{"api"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			rec.current = map[string]string{"api": "reg:5000/shop/api:old@sha256:a0", "worker": "reg:5000/shop/api:old@sha256:a0", "web": "reg:5000/shop/web:old@sha256:w0"}
			rec.failOn["update worker reg:5000/shop/api"] = errors.New("rolled back by swarm")
			m := newMeetingUpdates(rec, "api", "worker")
			cfg := groupConfig("[[{name: api, image: shop/api}, worker], {name: web, image: shop/web}]", tt.extra)
			j := runWithDeps(t, rec, cfg, Request{Project: "shop", Ref: "refs/heads/main", Branch: "main", Commit: "c0ffee"},
				func(d *Deps) { d.Updater = m })
			if j.Status != Failed || !strings.Contains(j.Error, "deploy worker") {
				t.Fatalf("status %s, error %q; want failed at deploy worker", j.Status, j.Error)
			}
			got := map[string]updater.Outcome{}
			for _, s := range j.Services {
				got[s.Service] = s.Outcome
			}
			// api, rolling with worker, finishes; web's group never starts.
			want := map[string]updater.Outcome{"api": updater.Updated, "worker": updater.RolledBack, "web": updater.Skipped}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("service outcomes (-want +got):\n%s", diff)
			}
			for _, c := range rec.calls {
				if strings.HasPrefix(c, "update web") || strings.HasPrefix(c, "retag") {
					t.Errorf("%q ran after worker's group failed", c)
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

// With pipeline: overlap a group starts once every member's image is
// pushed: api's update waits for web's image, not only its own.
func TestOverlapGroupWaitsForAllItsImages(t *testing.T) {
	rec := newRecorder()
	j := runWith(t, rec, overlapConfig("[[{name: api, image: shop/api}, {name: web, image: shop/web}]]"), mainPush)
	if j.Status != Succeeded {
		t.Fatalf("status %s: %s (calls %v)", j.Status, j.Error, rec.calls)
	}
	pushed := slices.Index(rec.calls, "push "+webRef)
	for _, c := range []string{"update api reg:5000/shop/api", "update web reg:5000/shop/web"} {
		if i := slices.Index(rec.calls, c); i < 0 || i < pushed {
			t.Errorf("%q at %d, web pushed at %d: a group member rolled before the group's images were ready (%v)", c, i, pushed, rec.calls)
		}
	}
}
