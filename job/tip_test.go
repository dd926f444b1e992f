package job

import (
	"context"
	"io"
	"testing"

	"github.com/swarmhook/swarmhook/source"
)

// movedSource is a repository whose branch has moved past every push:
// it checks out tip.
type movedSource struct {
	*recorder
	tip string
}

func (m movedSource) Checkout(ctx context.Context, repo source.Repo, ref, commit, dest string, log io.Writer) (string, error) {
	if _, err := m.recorder.Checkout(ctx, repo, ref, commit, dest, log); err != nil {
		return "", err
	}
	return m.tip, nil
}

// A push whose branch has moved on builds the tip the source checked
// out, and the job, its labels and build args say so, never the older
// pushed commit.
func TestJobBuildsTheTipItCheckedOut(t *testing.T) {
	rec := newRecorder()
	rec.current["worker"] = "reg:5000/shop/api:main-20261101000000@sha256:old"
	j := runWithDeps(t, rec, shopConfig, Request{Project: "shop", Trigger: TriggerPush, Ref: "refs/heads/main", Branch: "main", Commit: "c0ffee"},
		func(d *Deps) { d.Source = movedSource{rec, "newer"} })
	if j.Status != Succeeded || j.Commit != "newer" {
		t.Fatalf("job %s at %s (%s), want succeeded at the tip", j.Status, j.Commit, j.Error)
	}
	for _, req := range rec.requests {
		if got := req.Labels["org.opencontainers.image.revision"]; got != "newer" {
			t.Errorf("%v labelled revision %q, want the tip", req.Tags, got)
		}
	}
}
