package job

import (
	"strings"
	"testing"
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
