package config

import (
	"strings"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/tagpolicy"
)

func TestPruneRetentionPrecedence(t *testing.T) {
	c, err := Load(strings.NewReader(`
registry: {host: "127.0.0.1:5000"}
prune:
  schedule: "@daily"
  retention: [{keep_last: 5, keep_within: 48h}]
projects:
  - name: a
    repo: file:///srv/a.git
    images:
      - name: a/plain
      - name: a/own
        retention: [{branches: ["release/*"], keep_last: 30}, {}]
  - name: b
    repo: file:///srv/b.git
    retention: [{keep_last: 3}]
    images: [{name: b/img}]
  - name: c
    repo: file:///srv/c.git
    images: [{name: c/img}]
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Load(strings.NewReader(minimal), env(map[string]string{"SHOP_SECRET": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	if c2.Prune.Concurrency != DefaultPruneWorkers || c2.Prune.Schedule != "" {
		t.Errorf("prune defaults: %+v", c2.Prune)
	}
	tests := []struct {
		name       string
		cfg        *Config
		project    string
		image      int
		wantLast   []int
		wantWithin time.Duration
	}{
		{"global defaults", c, "a", 0, []int{5}, 48 * time.Hour},
		{"image's own, keep_last defaulted", c, "a", 1, []int{30, tagpolicy.DefaultKeepLast}, 0},
		{"project's own", c, "b", 0, []int{3}, 0},
		{"nothing configured", c2, "shop", 0, []int{tagpolicy.DefaultKeepLast}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := tt.cfg.Project(tt.project)
			rules := tt.cfg.RetentionFor(p, &p.Images[tt.image])
			if len(rules) != len(tt.wantLast) {
				t.Fatalf("rules = %+v", rules)
			}
			for i, r := range rules {
				if r.KeepLast != tt.wantLast[i] {
					t.Errorf("rule %d keep_last = %d, want %d", i, r.KeepLast, tt.wantLast[i])
				}
			}
			if rules[0].KeepWithin != tt.wantWithin {
				t.Errorf("keep_within = %s, want %s", rules[0].KeepWithin, tt.wantWithin)
			}
		})
	}
}

func TestPruneInvalid(t *testing.T) {
	tests := []struct{ name, yaml, field string }{
		{"bad schedule", `prune: {schedule: "every day"}`, "prune.schedule"},
		{"six fields", `prune: {schedule: "0 0 3 * * *"}`, "prune.schedule"},
		{"negative concurrency", `prune: {concurrency: -1}`, "prune.concurrency"},
		{"keep_last below one", `prune: {retention: [{keep_last: -2}]}`, "prune.retention[0]"},
		{"bad glob", `prune: {retention: [{branches: ["[x"]}]}`, "prune.retention[0]"},
		{"project rule", "projects: [{name: p, repo: file:///p, images: [{name: p}], retention: [{keep_last: -1}]}]\nregistry: {host: r:5000}", "projects[0].retention[0]"},
		{"image rule", "projects: [{name: p, repo: file:///p, images: [{name: p, retention: [{branches: [\"[\"]}]}]}]\nregistry: {host: r:5000}", "projects[0].images[0].retention[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tt.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.field+":") {
				t.Errorf("error = %v, want one naming %s", err, tt.field)
			}
		})
	}
}
