package job

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
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
		if !i.has[n] && !slices.Contains(out, n) {
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

// TestDeployToMissingServiceFailsNamingIt: the job fails naming the
// service that does not exist and leaves the services after it alone;
// told which services exist (Deps.Services), it changes none at all.
func TestDeployToMissingServiceFailsNamingIt(t *testing.T) {
	tests := []struct {
		name        string
		inv         *inventory
		wantUpdates []string
		want        []updater.Outcome // api, worker, web
	}{
		{"each update finds out", nil, []string{"update api reg:5000/shop/api", "update worker reg:5000/shop/api"},
			[]updater.Outcome{updater.Updated, updater.RolledBack, updater.Skipped}},
		{"checked before the first update", &inventory{has: map[string]bool{"api": true, "web": true}}, nil,
			[]updater.Outcome{updater.Skipped, updater.Failed, updater.Skipped}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			rec.current["worker"] = "reg:5000/shop/api:x@sha256:old"
			rec.failOn["update worker reg:5000/shop/api"] = &updater.NoServiceError{Service: "worker"}
			j := runWithDeps(t, rec, shopConfig, Request{Project: "shop", Trigger: TriggerPush, Ref: "refs/heads/main", Branch: "main", Commit: "c0ffee"},
				func(d *Deps) {
					if tt.inv != nil {
						d.Services = tt.inv
					}
				})
			if j.Status != Failed || j.Error != "deploy worker: service worker does not exist" {
				t.Errorf("status %s, error %q; want failed naming worker", j.Status, j.Error)
			}
			var updates []string
			for _, c := range rec.calls {
				if strings.HasPrefix(c, "update") {
					updates = append(updates, c)
				}
			}
			if diff := cmp.Diff(tt.wantUpdates, updates); diff != "" {
				t.Errorf("updates (-want +got):\n%s", diff)
			}
			var got []updater.Outcome
			for _, s := range j.Services {
				got = append(got, s.Outcome)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("outcomes of api, worker, web (-want +got):\n%s", diff)
			}
		})
	}
}
