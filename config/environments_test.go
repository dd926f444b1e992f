package config

import (
	"strings"
	"testing"
	"time"
)

const environments = `
registry: {host: "127.0.0.1:5000", insecure: true}
projects:
  - name: shop
    repo: file:///srv/shop.git
    allow_unsigned: true
    images: [{name: shop/api}]
    deploy:
      - branch: main
        environment: staging
        services: [api_staging]
      - branch: main
        environment: production
        promote_from: staging
        approve: {}
        windows:
          - {start: "0 9 * * 1-5", duration: 8h, timezone: Europe/Berlin}
        services: [api]
`

func TestEnvironments(t *testing.T) {
	c, err := Load(strings.NewReader(environments), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := c.Project("shop")
	d, ok := p.DeployFor("main")
	if !ok || d.Environment != "staging" {
		t.Fatalf("a push to main deploys to %+v, want staging: production takes promotions only", d)
	}
	prod, i, ok := p.Environment("production")
	if !ok || i != 1 || prod.PromoteFrom != "staging" {
		t.Fatalf("Environment(production) = %+v, %d, %v", prod, i, ok)
	}
	if prod.Approve.Scope != ScopeApprove || prod.Approve.Timeout.Duration != DefaultApproveTimeout {
		t.Errorf("approve defaults: %+v", prod.Approve)
	}
	if _, _, ok := p.Environment(""); ok {
		t.Error("the empty environment must match no target")
	}
}

func TestEnvironmentErrors(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"environment twice", "environment: production", "environment: staging", `environment: "staging" is used twice`},
		{"unknown promote_from", "promote_from: staging", "promote_from: qa", `promote_from: "qa" is no environment`},
		{"bad window", `duration: 8h`, `duration: 0s`, "windows[0]: window: duration must be positive"},
		{"bad zone", "Europe/Berlin", "Europe/Nowhere", `time zone "Europe/Nowhere"`},
		{"bad cron", `"0 9 * * 1-5"`, `"at nine"`, "is not a cron expression"},
		{"approve scope", "approve: {}", "approve: {scope: deploy}", `approve.scope: "deploy" must be approve or admin`},
		{"overlap", "approve: {}", "approve: {}\n        pipeline: overlap", "cannot wait for an approval"},
		{"approval on a stack", "approve: {}", "approve: {}\n        stack: {name: shop, file: compose.yml}", "cannot wait for an approval"},
		{"promote_from without environment", "environment: production\n        promote_from", "promote_from", "environment: must be set on a target with promote_from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(environments, tc.from, tc.to, 1)
			if doc == environments {
				t.Fatal("the case changes nothing")
			}
			_, err := Load(strings.NewReader(doc), env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestApproveTimeoutKept(t *testing.T) {
	c, err := Load(strings.NewReader(strings.Replace(environments, "approve: {}", "approve: {timeout: 5s}", 1)), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Projects[0].Deploy[1].Approve.Timeout.Duration; got != 5*time.Second {
		t.Errorf("timeout = %s", got)
	}
}
