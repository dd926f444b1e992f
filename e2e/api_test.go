package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/swarmhook/swarmhook/internal/testenv"
)

// TestAPIFailuresNameTheHost runs the binary against a registry that
// accepts connections and never answers and a Git host that is down: the
// tags listing answers 504 naming the registry, once its bound passes,
// and a manual deploy answers 502 naming the Git host, not 404.
func TestAPIFailuresNameTheHost(t *testing.T) {
	t.Parallel()
	testenv.Require(t)
	stalled := listen(t)
	go func() {
		var held []net.Conn
		for {
			c, err := stalled.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	down := listen(t)
	down.Close()
	svc := testenv.Unique("bounds")
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - name: bounds
    repo: http://%s/bounds.git
    secret: %s
    images: [{name: bounds/web}]
    deploy: [{branch: main, services: [{name: %s, image: bounds/web}]}]
`, stalled.Addr(), down.Addr(), secret, svc))

	code, body := sh.API(http.MethodGet, "/api/services/"+svc+"/tags", nil)
	if want := fmt.Sprintf("registry %s did not answer within 10s", stalled.Addr()); code != http.StatusGatewayTimeout || !strings.Contains(string(body), want) {
		t.Errorf("tags from a stalled registry: %d %s, want 504 saying %q", code, body, want)
	}
	code, body = sh.API(http.MethodPost, "/api/projects/bounds/deploy", []byte(`{"branch":"main"}`))
	if want := fmt.Sprintf("Git host %s failed", down.Addr()); code != http.StatusBadGateway || !strings.Contains(string(body), want) {
		t.Errorf("deploy with the Git host down: %d %s, want 502 saying %q", code, body, want)
	}
}

// TestAPIBodiesAreOneValue: the binary refuses a body with data after
// its JSON value, and one over the API's limit with 413.
func TestAPIBodiesAreOneValue(t *testing.T) {
	t.Parallel()
	testenv.Require(t)
	svc := testenv.Unique("bodies")
	sh := testenv.StartSwarmhook(t, fmt.Sprintf(`
registry: {host: %q, insecure: true}
projects:
  - name: bodies
    repo: file:///nowhere.git
    secret: %s
    images: [{name: bodies/web}]
    deploy: [{branch: main, services: [{name: %s, image: bodies/web}]}]
`, testenv.Registry(), secret, svc))
	for _, tt := range []struct {
		name, body string
		want       int
	}{
		{"two values", `{"replicas":1}{"replicas":999}`, http.StatusBadRequest},
		{"over the limit", `{"replicas":1}` + strings.Repeat(" ", 64<<10), http.StatusRequestEntityTooLarge},
	} {
		if code, body := sh.API(http.MethodPost, "/api/services/"+svc+"/scale", []byte(tt.body)); code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, code, body, tt.want)
		}
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}
