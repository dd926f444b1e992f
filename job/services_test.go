package job

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/updater"
)

// inventory is a ServiceInventory of the services it holds.
type inventory struct {
	has   map[string]bool
	err   error
	asked []string
}

func (i *inventory) Missing(_ context.Context, names []string) ([]string, error) {
	i.asked = append(i.asked, names...)
	var out []string
	for _, n := range names {
		if !i.has[n] && !strings.Contains(strings.Join(out, ","), n) {
			out = append(out, n)
		}
	}
	return out, i.err
}

func TestCheckServices(t *testing.T) {
	cfg, err := config.Load(strings.NewReader(fmt.Sprintf(shopConfig, t.TempDir())), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		inv       *inventory
		wantErr   string
		wantLines int
		wantLog   []string
	}{
		{"all there", &inventory{has: map[string]bool{"api": true, "worker": true, "web": true}}, "", 0, nil},
		{"two missing", &inventory{has: map[string]bool{"api": true}}, "deploy targets name services that do not exist: worker, web",
			2, []string{`"service":"worker"`, `"service":"web"`, `"branch":"main"`}},
		{"engine down", &inventory{err: errors.New("list services: connection refused")}, "list services: connection refused",
			1, []string{"could not check", "connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckServices(context.Background(), cfg, tt.inv)
			if got := fmt.Sprint(err); tt.wantErr != "" && got != tt.wantErr || tt.wantErr == "" && err != nil {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
			if diff := cmp.Diff([]string{"api", "worker", "web"}, tt.inv.asked); diff != "" {
				t.Errorf("services asked about (-want +got):\n%s", diff)
			}
			var log bytes.Buffer
			WarnMissingServices(context.Background(), cfg, tt.inv, zerolog.New(&log))
			if lines := strings.Count(log.String(), "\n"); lines != tt.wantLines {
				t.Errorf("%d warnings, want %d:\n%s", lines, tt.wantLines, log.String())
			}
			for _, w := range tt.wantLog {
				if !strings.Contains(log.String(), w) {
					t.Errorf("log does not say %s:\n%s", w, log.String())
				}
			}
		})
	}
}

// TestDeployToMissingServiceFailsNamingIt: the job fails at the service
// that does not exist, saying so, and leaves the services after it alone.
func TestDeployToMissingServiceFailsNamingIt(t *testing.T) {
	rec := newRecorder()
	rec.current["worker"] = "reg:5000/shop/api:x@sha256:old"
	rec.failOn["update worker reg:5000/shop/api"] = &updater.NoServiceError{Service: "worker"}
	j := runOne(t, rec, "main")
	if j.Status != Failed || j.Error != "deploy worker: service worker does not exist" {
		t.Errorf("status %s, error %q; want failed naming worker", j.Status, j.Error)
	}
	if last := rec.calls[len(rec.calls)-1]; last != "update worker reg:5000/shop/api" {
		t.Errorf("last call %q, want the update of worker (calls %v)", last, rec.calls)
	}
	if n := len(j.Services); n != 3 || j.Services[2].Service != "web" || j.Services[2].Outcome != updater.Skipped {
		t.Errorf("services = %+v, want web skipped", j.Services)
	}
}
