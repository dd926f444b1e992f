package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/swarmhook/swarmhook/internal/testenv"
	"github.com/swarmhook/swarmhook/registry"
	"github.com/swarmhook/swarmhook/tagpolicy"
)

// TestPruneKeepsWhatIsLive prunes a repository on Debian's
// docker-registry 2.8 (no tag deletion) and on distribution v3 (tag
// deletion) with keep_last 3, while a real Swarm service runs an old tag
// and has another old tag as its previous spec, -latest shares the newest
// tag's manifest and a release tag shares an old one. Afterwards -latest,
// the running and the previous digest still pull, and each branch keeps
// exactly what it must.
func TestPruneKeepsWhatIsLive(t *testing.T) {
	t.Parallel()
	c := testenv.Require(t)
	tests := []struct {
		name string
		host func(t *testing.T) string
	}{
		{"docker-registry 2.8", func(*testing.T) string { return testenv.Registry() }},
		{"distribution v3", func(t *testing.T) string { return testenv.RegistryV3(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			host := tt.host(t)
			ns := testenv.Unique("prune")
			testenv.RemoveImagesOnCleanup(t, c, ns)
			repo := ns + "/app"
			now := time.Now().UTC().Truncate(time.Second)
			at := func(branch string, hoursAgo int) string {
				return tagpolicy.Timestamped(branch, now.Add(-time.Duration(hoursAgo)*time.Hour))
			}

			// Two runnable images among the oldest main tags: the service
			// runs the second, and rolls back to the first.
			prevTag, runTag := at("main", 100), at("main", 90)
			prevRef := testenv.BuildAndPush(t, c, host+"/"+repo+":"+prevTag, "previous")
			runRef := pushVariant(t, prevRef, host+"/"+repo+":"+runTag)
			svc := testenv.CreateService(t, c, ns+"-api", prevRef, testenv.ServiceOptions{})
			svc.Spec.TaskTemplate.ContainerSpec.Image = runRef
			if _, err := c.ServiceUpdate(ctx, svc.ID, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 90*time.Second, 250*time.Millisecond, func() (bool, string) {
				n, err := testenv.RunningTasks(c, svc.ID, runRef)
				return err == nil && n == 1, fmt.Sprintf("%d tasks on %s (%v)", n, runRef, err)
			})

			// Tiny images: 10 more main tags (the newest also main-latest,
			// one old one also "v1.0"), and 5 on a branch with dashes.
			seed := testenv.NewSeeder()
			var latest, release string
			for h := 1; h <= 10; h++ {
				tags := []string{at("main", h)}
				switch h {
				case 1:
					tags = append(tags, "main-latest")
				case 8:
					tags = append(tags, "v1.0")
				}
				d, err := seed.Push(ctx, host, repo, tags...)
				if err != nil {
					t.Fatal(err)
				}
				switch h {
				case 1:
					latest = d
				case 8:
					release = d
				}
			}
			for h := 1; h <= 5; h++ {
				if _, err := seed.Push(ctx, host, repo, at("feat-a-b", h)); err != nil {
					t.Fatal(err)
				}
			}

			cfg := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
data_dir: %s
registry: {host: %q, insecure: true}
prune:
  concurrency: 4
  retention: [{keep_last: 3}]
projects:
  - name: %s
    repo: file:///nonexistent
    images: [{name: %s}]
`, filepath.Join(t.TempDir(), "data"), host, ns, repo)), 0o600); err != nil {
				t.Fatal(err)
			}
			bin := testenv.GoBinary(t, "./cmd/swarmhook")

			// The dry run plans the deletions and deletes nothing.
			plan := runPrune(t, bin, cfg, "--dry-run")
			wantDelete := []string{at("feat-a-b", 4), at("feat-a-b", 5)}
			for _, h := range []int{4, 5, 6, 7, 9, 10} {
				wantDelete = append(wantDelete, at("main", h))
			}
			slices.Sort(wantDelete)
			if got := plan.deleted(); !slices.Equal(got, wantDelete) {
				t.Fatalf("dry run plans to delete %v, want %v", got, wantDelete)
			}
			reg := registry.New(registry.Credentials{Host: host}, true)
			if tags, _ := reg.Tags(ctx, repo); len(tags) != 19 {
				t.Fatalf("dry run changed the repository: %d tags, want 19", len(tags))
			}

			rep := runPrune(t, bin, cfg)
			if rep.Job == 0 || rep.Repositories[0].Deleted != len(wantDelete) || rep.Repositories[0].Failed != 0 {
				t.Fatalf("prune report: %+v", rep)
			}
			tags, err := reg.Tags(ctx, repo)
			if err != nil {
				t.Fatal(err)
			}
			perBranch := map[string]int{}
			for _, tag := range tags {
				if b, _, ok := tagpolicy.ParseTimestamped(tag); ok {
					perBranch[b]++
				}
			}
			// main: newest 3, the previous spec, the running one, the one
			// "v1.0" shares; feat-a-b: newest 3.
			if perBranch["main"] != 6 || perBranch["feat-a-b"] != 3 || len(tags) != 11 {
				t.Errorf("left %v (%v), want main 6, feat-a-b 3, plus main-latest and v1.0", perBranch, tags)
			}
			for tag, want := range map[string]string{"main-latest": latest, "v1.0": release, at("main", 8): release} {
				if got, err := reg.Digest(ctx, repo, tag); err != nil || got != want {
					t.Errorf("%s = %s, %v; want %s", tag, got, err, want)
				}
			}
			for _, ref := range []string{runRef, prevRef, host + "/" + repo + ":main-latest"} {
				pull(t, ref)
			}
		})
	}
}

type pruneReport struct {
	Job          int64 `json:"job"`
	Repositories []struct {
		Delete  []struct{ Tag string } `json:"delete"`
		Deleted int                    `json:"deleted"`
		Failed  int                    `json:"failed"`
		Errors  []string               `json:"errors"`
	} `json:"repositories"`
}

func (r pruneReport) deleted() []string {
	var out []string
	for _, repo := range r.Repositories {
		for _, d := range repo.Delete {
			out = append(out, d.Tag)
		}
	}
	slices.Sort(out)
	return out
}

func runPrune(t *testing.T, bin, cfg string, args ...string) pruneReport {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, append([]string{"prune", "-config", cfg}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("swarmhook prune %v: %v\n%s\n%s", args, err, stdout.String(), stderr.String())
	}
	var rep pruneReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("prune output: %v\n%s", err, stdout.String())
	}
	return rep
}

// pushVariant pushes src with one more label as dst (same layers, new
// digest) and returns dst@digest.
func pushVariant(t *testing.T, src, dst string) string {
	t.Helper()
	img, err := remote.Image(mustRef(t, src))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config.DeepCopy()
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels["io.swarmhook.test.variant"] = dst
	img, err = mutate.Config(img, *cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, dst), img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return dst + "@" + d.String()
}

func mustRef(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pull fetches ref's manifest, config and every layer from the registry.
func pull(t *testing.T, ref string) {
	t.Helper()
	img, err := remote.Image(mustRef(t, ref))
	if err != nil {
		t.Errorf("pull %s: %v", ref, err)
		return
	}
	if _, err := img.RawConfigFile(); err != nil {
		t.Errorf("pull config of %s: %v", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Errorf("layers of %s: %v", ref, err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		if err != nil {
			t.Errorf("pull layer of %s: %v", ref, err)
		}
	}
}
