package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/registry"
	"github.com/swarmhook/swarmhook/stack"
)

const stackConfig = `
registry: {host: "reg:5000"}
data_dir: %s
projects:
  - name: shop
    repo: file:///nowhere
    images: [{name: shop/api}]
    deploy:
      - branch: main
        stack: {name: shop, file: compose.yml}
        services: [api]
`

// TestTagDeployOfAStackTargetChangesNothing: a stack target's services
// are keys of its file, so a tag deploy must not take them for Swarm
// service names.
func TestTagDeployOfAStackTargetChangesNothing(t *testing.T) {
	rec := newRecorder()
	j := runWith(t, rec, stackConfig, Request{Action: ActionDeploy, Project: "shop", Branch: "main", Tag: "main-20261101000000"})
	if j.Status != Failed || !strings.Contains(j.Error, "deploys stack shop") {
		t.Fatalf("job %s %q, want failed naming the stack", j.Status, j.Error)
	}
	for _, c := range rec.calls {
		if strings.HasPrefix(c, "update") || strings.HasPrefix(c, "retag") {
			t.Errorf("%q for a tag deploy of a stack target", c)
		}
	}
}

// TestEnvFilesAreCheckedAtStart: a stack target's env_file that is
// missing or malformed stops the start, naming its key, instead of
// failing every job of the branch later.
func TestEnvFilesAreCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.env")
	bad := filepath.Join(dir, "bad.env")
	os.WriteFile(good, []byte("A=1\n"), 0o600)
	os.WriteFile(bad, []byte("PASSWORD=\"hunter22-secret\n"), 0o600)
	for _, tc := range []struct{ name, envFile, want string }{
		{"readable", good, ""},
		{"missing", filepath.Join(dir, "none.env"), "projects[0].deploy[0].stack.env_file"},
		{"malformed", bad, "projects[0].deploy[0].stack.env_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load(strings.NewReader(fmt.Sprintf(`
registry: {host: "reg:5000"}
projects:
  - name: shop
    repo: file:///nowhere
    images: [{name: shop/api}]
    deploy:
      - branch: main
        stack: {name: shop, file: compose.yml, env_file: %q}
`, tc.envFile)), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			err = CheckEnvFiles(cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("a readable env file: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one naming %s", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "hunter22"):
				t.Errorf("error %q shows the file's text", err)
			}
		})
	}
}

// TestRollbackOfAStackServiceToATag: a stack service running one of the
// project's images goes back to a tag by an image update of that service
// alone, as docker service update --image would; one running another
// image fails naming it, changing nothing.
func TestRollbackOfAStackServiceToATag(t *testing.T) {
	tag := "main-20261101000000"
	tests := []struct {
		name, runs string
		wantCalls  []string
		wantErr    string
	}{
		{"project image", "reg:5000/shop/api:main-20261102000000@sha256:bb",
			[]string{"digest shop/api:" + tag, "update shop_api reg:5000/shop/api"}, ""},
		{"other image", "redis:7@sha256:cc", nil, "runs redis:7@sha256:cc, which is none of project shop's images"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			rec.current["shop_api"] = tt.runs
			j := runWith(t, rec, stackConfig, Request{Action: ActionRollback, Project: "shop", Service: "shop_api", Tag: tag})
			if tt.wantErr != "" {
				if j.Status != Failed || !strings.Contains(j.Error, tt.wantErr) {
					t.Errorf("job %s %q, want failed with %q", j.Status, j.Error, tt.wantErr)
				}
			} else if j.Status != Succeeded {
				t.Errorf("job %s %q, want succeeded", j.Status, j.Error)
			}
			var changes []string
			for _, c := range rec.calls {
				if strings.HasPrefix(c, "update") || strings.HasPrefix(c, "digest") || strings.HasPrefix(c, "retag") {
					changes = append(changes, c)
				}
			}
			if !slices.Equal(changes, tt.wantCalls) {
				t.Errorf("calls %q, want %q", changes, tt.wantCalls)
			}
		})
	}
}

// noStacks is a stack client the test expects no call of.
type noStacks struct{ stack.Client }

// TestPlanBranchOnlyForgivesAMissingLatest: a branch whose -latest does
// not exist yet is planned (here the fake checkout leaves an empty tree,
// so loading the file is what fails), but a registry that fails is the
// plan's error, not an image change of every service.
func TestPlanBranchOnlyForgivesAMissingLatest(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"no -latest yet", fmt.Errorf("manifest: %w", registry.ErrNotFound), "read compose.yml"},
		{"registry down", errors.New("503 Service Unavailable"), "plan: digest of shop/api:main-latest: 503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(strings.NewReader(fmt.Sprintf(stackConfig, t.TempDir())), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			rec.failOn["digest shop/api:main-latest"] = tt.err
			r := NewRunner(cfg, Deps{Source: rec, Registry: rec, Stacks: noStacks{}, Log: zerolog.Nop()})
			_, err = r.PlanBranch(context.Background(), "shop", "main")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PlanBranch: %v, want an error with %q", err, tt.want)
			}
		})
	}
}
