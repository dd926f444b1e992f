package registry

import (
	"context"
	"encoding/json"
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

// TestRestampConfigChangesOnlyTimes: the config's created time and each
// history entry's become the commit's; every other field keeps its
// bytes, whatever the order of the fields.
func TestRestampConfigChangesOnlyTimes(t *testing.T) {
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name, in, want string
	}{{
		name: "times and unknown fields",
		in:   `{"os":"linux","created":"2026-12-03T10:00:00.123Z","moby.buildkit.cache.v0":"W3siZGlnZXN0Ijoic2hhMjU2OmFiIn1d","history":[{"created":"2026-12-03T10:00:00Z","created_by":"RUN a \u003e b","comment":"buildkit.dockerfile.v0"},{"created_by":"COPY a /a","empty_layer":true}]}`,
		want: `{"created":"2026-11-20T08:00:00Z","history":[{"comment":"buildkit.dockerfile.v0","created":"2026-11-20T08:00:00Z","created_by":"RUN a \u003e b"},{"created":"2026-11-20T08:00:00Z","created_by":"COPY a /a","empty_layer":true}],"moby.buildkit.cache.v0":"W3siZGlnZXN0Ijoic2hhMjU2OmFiIn1d","os":"linux"}`,
	}, {
		name: "no history",
		in:   `{"config":{"Labels":{"a":"<b> & c"}},"created":"2026-12-03T10:00:00Z"}`,
		want: `{"config":{"Labels":{"a":"<b> & c"}},"created":"2026-11-20T08:00:00Z"}`,
	}, {
		name: "null history",
		in:   `{"history":null}`,
		want: `{"created":"2026-11-20T08:00:00Z","history":null}`,
	}} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := restampConfig([]byte(tt.in), at)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("restamped config (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := restampConfig([]byte(`{"history":{}}`), at); err == nil {
		t.Error("a history that is no list was accepted")
	}
}

// TestRestampKeepsBuildKitInlineCache: the inline cache BuildKit writes
// into the config (moby.buildkit.cache.v0), a field go-containerregistry's
// ConfigFile does not have, survives restamping byte for byte, and so
// does every other field; only the times change.
func TestRestampKeepsBuildKitInlineCache(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	commit := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

	base := randomImage(t)
	cfg, _ := base.ConfigFile()
	rootfs, _ := json.Marshal(cfg.RootFS)
	const cache = `"W3sibGF5ZXJzIjpbeyJsYXllciI6MCwiY3JlYXRlZEF0IjoiMjAyNi0xMi0wM1QxMDowMDowMC4xWiJ9XX1d"`
	raw := `{"architecture":"amd64","os":"linux","created":"2026-12-03T10:00:00.1Z",` +
		`"config":{"Labels":{"` + CreatedLabel + `":"` + commit.Format(time.RFC3339) + `","x":"<&>"}},` +
		`"history":[{"created":"2026-12-03T10:00:00.1Z","created_by":"RUN make"},{"created":"2026-12-03T10:00:00.2Z","created_by":"COPY . /"}],` +
		`"moby.buildkit.cache.v0":` + cache + `,"rootfs":` + string(rootfs) + `}`
	built, err := withConfig(base, []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(parse(t, host, "app:b"), built); err != nil {
		t.Fatal(err)
	}
	pushed, _ := built.Digest()

	d, err := New(Credentials{Host: host}, true).Restamp(context.Background(), "app", "b", pushed.String(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	out, err := remote.Image(parse(t, host, "app@"+d))
	if err != nil {
		t.Fatal(err)
	}
	got, err := out.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var before, after map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &after); err != nil {
		t.Fatal(err)
	}
	if string(after["moby.buildkit.cache.v0"]) != cache {
		t.Errorf("inline cache after restamping: %s, want %s", after["moby.buildkit.cache.v0"], cache)
	}
	for k, v := range before {
		if k != "created" && k != "history" && string(after[k]) != string(v) {
			t.Errorf("restamping changed %s: %s, want %s", k, after[k], v)
		}
	}
	if len(after) != len(before) {
		t.Errorf("restamped config has %d fields, want %d: %s", len(after), len(before), got)
	}
	rc, err := out.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !rc.Created.Time.Equal(commit) || len(rc.History) != 2 || !rc.History[0].Created.Time.Equal(commit) || !rc.History[1].Created.Time.Equal(commit) || rc.History[1].CreatedBy != "COPY . /" {
		t.Errorf("restamped times: created %s, history %+v; want all %s", rc.Created, rc.History, commit)
	}
	inL, _ := base.Layers()
	outL, _ := out.Layers()
	if len(inL) != len(outL) {
		t.Fatalf("%d layers after restamping, want %d", len(outL), len(inL))
	}
	for k := range inL {
		d1, _ := inL[k].Digest()
		d2, _ := outL[k].Digest()
		if d1 != d2 {
			t.Errorf("layer %d: %s, want %s", k, d2, d1)
		}
	}
}
