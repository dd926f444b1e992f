package cli

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientImportsNoServerCode: the CLI and its client link neither the
// Docker SDK nor the server's packages, so the client commands stay a
// thin HTTP caller (as crane's depcheck does for its CLI).
func TestClientImportsNoServerCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/swarmhook/swarmhook/cli").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/docker/", "github.com/swarmhook/swarmhook/server", "github.com/swarmhook/swarmhook/job", "github.com/swarmhook/swarmhook/store", "github.com/swarmhook/swarmhook/updater"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("cli depends on %s", dep)
			}
		}
	}
}
