package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

// TestDeployTargetNamingMissingServices: a deploy target lists a real
// service, one that does not exist and one named by a prefix of the real
// one's ID, which the engine alone would resolve to it. swarmhook warns
// at start-up and in /readyz (and stays ready), a push fails naming the
// missing service before it changes any, and a redeploy of the ID prefix
// fails without restarting the real service.
func TestDeployTargetNamingMissingServices(t *testing.T) {
	t.Parallel()
	c := testenv.Require(t)
	ns := testenv.Unique("e2e")
	testenv.RemoveImagesOnCleanup(t, c, ns)
	repo := testenv.NewGitRepo(t)
	image := testenv.BuildAndPush(t, c, fmt.Sprintf("%s/%s/api:init", testenv.Registry(), ns), "api v0")
	real := testenv.CreateService(t, c, ns+"-api", image, testenv.ServiceOptions{Replicas: 1})
	gone, prefix := ns+"-gone", real.ID[:10]

	sh := testenv.StartSwarmhook(t, shopConfig(repo, ns, fmt.Sprintf(`    deploy:
      - branch: main
        services:
          - {name: %s, image: %s/api}
          - {name: %s, image: %s/api}
          - {name: %s, image: %s/api}
        timeout: 2m
`, real.Spec.Name, ns, gone, ns, prefix, ns)))

	// Start-up and /readyz name both, and swarmhook stays ready.
	for _, name := range []string{gone, prefix} {
		if out := sh.Output(); !strings.Contains(out, name) || !strings.Contains(out, "does not exist") {
			t.Errorf("start-up log does not warn about %s:\n%s", name, testenv.TrimLines(out, 30))
		}
	}
	code, body := sh.Do(http.MethodGet, "/readyz", nil, nil)
	var ready struct {
		Status   string            `json:"status"`
		Warnings []string          `json:"warnings"`
		Checks   map[string]string `json:"checks"`
	}
	json.Unmarshal(body, &ready)
	if code != http.StatusOK || ready.Status != "ok" || strings.Join(ready.Warnings, ",") != "services" {
		t.Errorf("/readyz = %d %s, want 200 ok with a services warning", code, body)
	}
	if want := "deploy targets name services that do not exist: " + gone + ", " + prefix; ready.Checks["services"] != want {
		t.Errorf("/readyz services check = %q, want %q", ready.Checks["services"], want)
	}

	// A push fails at the missing service and leaves the rest alone.
	j, log := pushAndWait(t, sh, "shop", repo.Commit("release v1", testenv.AppFiles(t, "api v1")))
	if want := "deploy " + gone + ": service " + gone + " does not exist"; j.Status != "failed" || j.Error != want {
		t.Errorf("job %s: %q, want failed with %q\n%s", j.Status, j.Error, want, testenv.TrimLines(log, 40))
	}
	var outcomes []string
	for _, s := range j.Services {
		outcomes = append(outcomes, s.Service+" "+s.Outcome)
	}
	if want := []string{real.Spec.Name + " skipped", gone + " failed", prefix + " skipped"}; strings.Join(outcomes, ", ") != strings.Join(want, ", ") {
		t.Errorf("service outcomes %v, want %v", outcomes, want)
	}

	// A redeploy of the ID prefix is refused by swarmhook, not sent on to
	// the service the engine would have matched.
	code, body = sh.API(http.MethodPost, "/api/services/"+prefix+"/redeploy?wait=1", nil)
	if code != http.StatusConflict || !strings.Contains(string(body), "service "+prefix+" does not exist") {
		t.Errorf("redeploy of %s answered %d %s, want 409 saying it does not exist", prefix, code, body)
	}
	after := testenv.Inspect(t, c, real.ID)
	if after.Version.Index != real.Version.Index || after.Spec.TaskTemplate.ContainerSpec.Image != image {
		t.Errorf("%s was changed: version %d -> %d, image %s", real.Spec.Name, real.Version.Index, after.Version.Index, after.Spec.TaskTemplate.ContainerSpec.Image)
	}
}
