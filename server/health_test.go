package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
)

func probe(err error) func(context.Context) error {
	return func(context.Context) error { return err }
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name       string
		checks     []Check
		wantCode   int
		wantFailed []string
		wantStatus string
	}{
		{"all pass", []Check{{"engine", probe(nil)}, {"registry", probe(nil)}, {"store", probe(nil)}}, 200, nil, "ok"},
		{"registry down", []Check{{"engine", probe(nil)}, {"registry", probe(errors.New("GET /v2/: connection refused"))}, {"store", probe(nil)}},
			503, []string{"registry"}, "unavailable: registry"},
		{"engine and store down", []Check{{"store", probe(errors.New("read-only"))}, {"engine", probe(errors.New("no socket"))}, {"registry", probe(nil)}},
			503, []string{"engine", "store"}, "unavailable: engine, store"},
		{"a probe that hangs is cut off", []Check{{"engine", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}},
			503, []string{"engine"}, "unavailable: engine"},
		{"no checks", nil, 200, nil, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Deps{Config: &config.Config{}, Log: zerolog.Nop(), Ready: tt.checks})
			req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
			if tt.name == "a probe that hangs is cut off" {
				ctx, cancel := context.WithCancel(req.Context())
				cancel() // stands in for readyTimeout passing
				req = req.WithContext(ctx)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("code %d, want %d: %s", rec.Code, tt.wantCode, rec.Body)
			}
			var a readyAnswer
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
				t.Fatal(err)
			}
			if a.Status != tt.wantStatus {
				t.Errorf("status %q, want %q", a.Status, tt.wantStatus)
			}
			if diff := cmp.Diff(tt.wantFailed, a.Failed); diff != "" {
				t.Errorf("failed (-want +got):\n%s", diff)
			}
			for _, c := range tt.checks {
				if _, ok := a.Checks[c.Name]; !ok {
					t.Errorf("check %s missing from the answer", c.Name)
				}
			}
		})
	}
}

func TestHealthzAndMetricsRoutes(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("swarmhook_up 1\n")) })
	s := New(Deps{Config: &config.Config{}, Log: zerolog.Nop(), Metrics: metrics})
	for path, want := range map[string]string{"/healthz": `"ok"`, "/metrics": "swarmhook_up 1"} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s: %d %q, want 200 with %q", path, rec.Code, rec.Body, want)
		}
	}
}

// deliveryCounts is a DeliveryCounter.
type deliveryCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (d *deliveryCounts) Delivery(provider, outcome string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]int{}
	}
	d.m[provider+" "+outcome]++
}

func TestDeliveriesCountedByProviderAndOutcome(t *testing.T) {
	push := githubPush("refs/heads/main", commitA, "fix")
	badSig := signedGitHub("push", "", push)
	badSig.Set("X-Hub-Signature-256", "sha256=00")
	gitlab := http.Header{"X-Gitlab-Event": {"Push Hook"}, "X-Gitlab-Token": {"wrong"}}
	tests := []struct {
		name     string
		ds       []delivery
		want     map[string]int
		coalesce bool
	}{
		{"accepted", []delivery{gh("push", push)}, map[string]int{"github accepted": 1}, false},
		{"ping is ignored", []delivery{gh("ping", []byte(`{}`))}, map[string]int{"github ignored": 1}, false},
		{"redelivery", []delivery{
			{project: "shop", header: signedGitHub("push", "d-1", push), body: push},
			{project: "shop", header: signedGitHub("push", "d-1", push), body: push},
		}, map[string]int{"github accepted": 1, "github redelivery": 1}, false},
		{"a push joining a waiting build", []delivery{
			{project: "shop", header: signedGitHub("push", "d-1", push), body: push},
			{project: "shop", header: signedGitHub("push", "d-2", push), body: push},
		}, map[string]int{"github accepted": 1, "github coalesced": 1}, true},
		{"bad signature", []delivery{{project: "shop", header: badSig, body: push}}, map[string]int{"github refused": 1}, false},
		{"gitlab wrong token", []delivery{{project: "shop", header: gitlab, body: []byte(`{}`)}}, map[string]int{"gitlab refused": 1}, false},
		{"unknown project", []delivery{{project: "nope", header: signedGitHub("push", "", push), body: push}}, map[string]int{"github refused": 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			counts := &deliveryCounts{}
			f.srv.d.DeliveryCounter = counts
			for _, d := range tt.ds {
				f.send(d)
			}
			if diff := cmp.Diff(tt.want, counts.m); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReadyzWarnsWithoutBeingUnready: a failed Warn check (deploy
// targets naming services that do not exist) is in the answer's detail
// and warnings, and readiness is decided by the Ready checks alone.
func TestReadyzWarnsWithoutBeingUnready(t *testing.T) {
	missing := probe(errors.New("deploy targets name services that do not exist: shop_api"))
	tests := []struct {
		name       string
		ready      []Check
		wantCode   int
		wantFailed []string
	}{
		{"ready with a warning", []Check{{"engine", probe(nil)}}, 200, nil},
		{"unready with a warning", []Check{{"engine", probe(errors.New("no socket"))}}, 503, []string{"engine"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Deps{Config: &config.Config{}, Log: zerolog.Nop(), Ready: tt.ready, Warn: []Check{{"services", missing}}})
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tt.wantCode {
				t.Fatalf("code %d, want %d: %s", rec.Code, tt.wantCode, rec.Body)
			}
			var a readyAnswer
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantFailed, a.Failed); diff != "" {
				t.Errorf("failed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"services"}, a.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if got := a.Checks["services"]; !strings.Contains(got, "shop_api") {
				t.Errorf("services check says %q, want it to name shop_api", got)
			}
		})
	}
}
