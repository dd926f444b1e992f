package registry

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pushBuilt pushes an image as a builder leaves it: created and history
// at build time, the created label at the commit's.
func pushBuilt(t *testing.T, host, ref string, img v1.Image, built time.Time, label string) v1.Image {
	t.Helper()
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: built}
	cfg.History = []v1.History{{Created: v1.Time{Time: built}, CreatedBy: "COPY a /a"}, {Created: v1.Time{Time: built}, CreatedBy: "COPY b /b"}}
	cfg.Config.Labels = map[string]string{CreatedLabel: label, "other": "x"}
	img, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(parse(t, host, ref), img); err != nil {
		t.Fatal(err)
	}
	return img
}

func parse(t *testing.T, host, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(host+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(64, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestRestampGivesOneDigestPerCommit: two builds of one commit made at
// different times, restamped, have one digest, their layers untouched.
func TestRestampGivesOneDigestPerCommit(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c := New(Credentials{Host: host}, true)
	ctx := context.Background()
	commit := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

	// The same layers for both builds, as a build of the same files makes.
	base := randomImage(t)
	var digests []string
	for i, built := range []time.Time{time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), time.Date(2026, 12, 3, 11, 30, 0, 0, time.UTC)} {
		img := pushBuilt(t, host, "app:b"+string(rune('0'+i)), base, built, commit.Format(time.RFC3339))
		pushed, _ := img.Digest()
		d, err := c.Restamp(ctx, "app", "b"+string(rune('0'+i)), pushed.String(), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if d == pushed.String() {
			t.Errorf("build %d: digest unchanged by restamping", i)
		}
		got, err := c.Digest(ctx, "app", "b"+string(rune('0'+i)))
		if err != nil || got != d {
			t.Errorf("tag points at %s, %v; want the restamped %s", got, err, d)
		}
		out, err := remote.Image(parse(t, host, "app@"+d))
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := out.ConfigFile()
		if !cfg.Created.Time.Equal(commit) || !cfg.History[0].Created.Time.Equal(commit) || !cfg.History[1].Created.Time.Equal(commit) {
			t.Errorf("times not the commit's: created %s, history %+v", cfg.Created, cfg.History)
		}
		if cfg.Config.Labels["other"] != "x" || cfg.History[1].CreatedBy != "COPY b /b" {
			t.Errorf("restamping changed more than times: %+v", cfg)
		}
		inL, _ := img.Layers()
		outL, _ := out.Layers()
		var a, b []string
		for k := range inL {
			d1, _ := inL[k].Digest()
			d2, _ := outL[k].Digest()
			a, b = append(a, d1.String()), append(b, d2.String())
		}
		if diff := cmp.Diff(a, b); diff != "" {
			t.Errorf("layers changed (-pushed +restamped):\n%s", diff)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of one commit: %s and %s", digests[0], digests[1])
	}

	// Restamped already: nothing to do, same digest.
	again, err := c.Restamp(ctx, "app", "b0", digests[0], io.Discard)
	if err != nil || again != digests[0] {
		t.Errorf("second restamp: %s, %v; want %s", again, err, digests[0])
	}
	// A tag that moved since the push is not touched.
	if _, err := c.Restamp(ctx, "app", "b0", "sha256:"+strings.Repeat("0", 64), io.Discard); err == nil || !strings.Contains(err.Error(), "not the pushed") {
		t.Errorf("restamp of a moved tag: %v", err)
	}
}

// TestRestampWithoutLabelLeavesImage: an image without the created
// label (not swarmhook's) keeps its digest.
func TestRestampWithoutLabelLeavesImage(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img := pushBuilt(t, host, "app:x", randomImage(t), time.Now(), "not a time")
	want, _ := img.Digest()
	got, err := New(Credentials{Host: host}, true).Restamp(context.Background(), "app", "x", want.String(), io.Discard)
	if err != nil || got != want.String() {
		t.Errorf("Restamp = %s, %v; want %s unchanged", got, err, want)
	}
}
