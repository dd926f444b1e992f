package job

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmhook/swarmhook/config"
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
