package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lines joins YAML lines, so a case's line numbers can be read off it.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// base is a valid start: a registry and one project whose secret comes
// from SHOP_SECRET (line 5). Cases append lines from 9 on.
var base = []string{
	"registry: {host: r:5000}",                     // 1
	"projects:",                                    // 2
	"  - name: shop",                               // 3
	"    repo: file:///srv/shop.git",               // 4
	"    secret: ${SHOP_SECRET}",                   // 5
	"    images: [{name: shop/api}]",               // 6
	"    deploy:",                                  // 7
	"      - {branch: main, services: [shop_api]}", // 8
}

// goWords are Go's words, which an operator never wrote.
var goWords = []string{"config.", "not found in type", "cannot unmarshal", "!!", "uint64", "int", "struct"}

func TestLoadErrorsSpeakYAML(t *testing.T) {
	long := "a-long-enough-webhook-secret"
	tests := []refusal{
		{"unknown nested key", lines(
			"# comments and blank lines count",
			"",
			"prune:",
			"  retention:",
			"    - keep_lst: 3",
		), nil, []string{`line 5: unknown key "keep_lst" in prune.retention[0] (known: branches, keep_last, keep_within)`}, goWords},
		{"unknown key in a service", lines(append(base,
			"      - branch: dev",
			"        services: [{name: dev_api, replicas: 2}]",
		)...), map[string]string{"SHOP_SECRET": long}, []string{`line 10: unknown key "replicas" in projects[0].deploy[1].services[0] (known: name, image, update)`}, goWords},
		{"word for a number", lines(
			"jobs:",
			"",
			"  concurrency: five",
		), nil, []string{`line 3: jobs.concurrency: expected a whole number, got "five"`}, goWords},
		{"word for a count", lines(append(base,
			"      - branch: dev",
			"        services: [dev_api]",
			"        update: {parallelism: -1}",
		)...), map[string]string{"SHOP_SECRET": long}, []string{`line 11: projects[0].deploy[1].update.parallelism: expected a whole number, 0 or more, got "-1"`}, goWords},
		{"word for true or false", lines(
			"registry:",
			"  insecure: maybe",
		), nil, []string{`line 2: registry.insecure: expected true or false, got "maybe"`}, goWords},
		{"a list where a mapping goes", lines(
			"registry: [r:5000]",
		), nil, []string{`line 1: registry: expected a mapping with keys host, insecure, username, password, retries, retry_backoff, got a list`}, goWords},
		{"a mapping where a list goes", lines(
			"tokens: {name: bot}",
		), nil, []string{`line 1: tokens: expected a list, got a mapping`}, goWords},
		{"a list where a duration goes", lines(
			"jobs: {timeout: [5m]}",
		), nil, []string{`line 1: jobs.timeout: expected a duration like 30s or 5m, got a list`}, goWords},
		{"key set twice", lines(
			"listen: :8080",
			"data_dir: /srv",
			"listen: :9090",
		), nil, []string{`line 3: listen: set twice (first on line 1)`}, goWords},
		{"lines stay the file's after a multi-line variable", lines(append(base,
			"jobs:",
			"  timeout: soon",
		)...), map[string]string{"SHOP_SECRET": "first-line\nsecond-line\nthird-line-of-secret"}, []string{`line 10: jobs.timeout: "soon" is not a duration like 30s or 5m`}, []string{"second-line"}},
		{"lines stay the file's in flow style", lines(
			"",
			"registry: {host: r:5000}",
			"",
			"projects: [{name: shop, repo: x, images: [{name: shop/api}],",
			"  deploy: [{branch: main,",
			"    services: []}]}]",
		), nil, []string{"line 6: projects[0].deploy[0].services: must not be empty"}, nil},
		{"validation names the line of the key", lines(append(base,
			"    build:",
			"      parallelism: -3",
		)...), map[string]string{"SHOP_SECRET": long}, []string{"line 10: projects[0].build.parallelism: must be at least 1"}, nil},
		{"a variable's value is not repeated", lines(
			"jobs:",
			"  concurrency: ${JOBS}",
		), map[string]string{"JOBS": "hunter2-not-a-number"}, []string{`line 2: jobs.concurrency: expected a whole number, got the value of ${JOBS}`}, []string{"hunter2"}},
		{"an unset variable names its field", lines(base...), nil, []string{"line 5: projects[0].secret: environment variable SHOP_SECRET is not set"}, nil},
	}
	testRefusals(t, tests)
}

func TestLoadRefusesWeakSecrets(t *testing.T) {
	tokenA, tokenB := "read-token-0123456789", "admin-token-0123456789"
	tests := []refusal{
		{"webhook secret empty through a variable", lines(base...), map[string]string{"SHOP_SECRET": ""},
			[]string{"line 5: projects[0].secret: ${SHOP_SECRET} is set but empty"}, nil},
		{"notify secret empty through a variable", lines(append(base,
			"    notify:",
			"      webhooks:",
			`        - {url: "https://hooks.example.com/x", secret: "${NOTIFY_SECRET}"}`,
		)...), map[string]string{"SHOP_SECRET": "a-long-enough-webhook-secret", "NOTIFY_SECRET": ""},
			[]string{"line 11: projects[0].notify.webhooks[0].secret: ${NOTIFY_SECRET} is set but empty"}, nil},
		{"token empty through a variable", lines(
			"tokens:",
			"  - name: bot",
			"    token: ${BOT_TOKEN}",
			"    scopes: [read]",
		), map[string]string{"BOT_TOKEN": ""}, []string{"line 3: tokens[0].token: ${BOT_TOKEN} is set but empty"}, nil},
		{"git token empty through variables", lines(
			"registry: {host: r:5000}",
			"projects:",
			"  - name: shop",
			"    repo: https://git.example.com/shop.git",
			`    git: {token: "${GIT_PREFIX}${GIT_TOKEN}"}`,
			"    images: [{name: shop/api}]",
		), map[string]string{"GIT_PREFIX": "", "GIT_TOKEN": ""}, []string{"line 5: projects[0].git.token: ${GIT_PREFIX}, ${GIT_TOKEN} are set but empty"}, nil},
		{"registry password empty beside a username", lines(
			"registry:",
			"  host: r:5000",
			"  username: pusher",
			`  password: "${REGISTRY_PASSWORD}"`,
		), map[string]string{"REGISTRY_PASSWORD": ""}, []string{"line 4: registry.password: ${REGISTRY_PASSWORD} is set but empty"}, nil},
		{"two tokens with one value", lines(
			"tokens:",
			"  - {name: reader, token: "+tokenA+", scopes: [read]}",
			"  - {name: ops, token: "+tokenB+", scopes: [admin]}",
			`  - {name: chat, token: "${CHAT_TOKEN}", scopes: [read]}`,
		), map[string]string{"CHAT_TOKEN": tokenB},
			[]string{`line 4: tokens[2].token: "chat" has the same value as "ops" (tokens[1], line 3); give each token its own`}, []string{tokenA, tokenB}},
		{"one service in two projects", lines(append(base,
			"  - name: shop-admin",
			"    repo: file:///srv/admin.git",
			"    images: [{name: shop/admin}]",
			"    deploy:",
			"      - branch: main",
			"        services:",
			"          - admin_web",
			"          - {name: shop_api, image: shop/admin}",
		)...), map[string]string{"SHOP_SECRET": "a-long-enough-webhook-secret"},
			[]string{`line 16: projects[1].deploy[0].services[1].name: service "shop_api" is already deployed by project "shop" (projects[0].deploy[0].services[0], line 8)`}, nil},
	}
	testRefusals(t, tests)
}

// refusal is a configuration Load must refuse: its error holds every want
// and no never.
type refusal struct {
	name string
	yaml string
	env  map[string]string
	want []string
	// never must not appear: Go's words, and secret values.
	never []string
}

func testRefusals(t *testing.T, tests []refusal) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tt.yaml), env(tt.env))
			if err == nil {
				t.Fatalf("Load accepted it, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			for _, n := range tt.never {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error %q contains %q", err, n)
				}
			}
		})
	}
}

// TestLoadKeepsWorkingSetUps: what the new checks must not refuse, and
// values that must come through the expansion as written.
func TestLoadKeepsWorkingSetUps(t *testing.T) {
	c, err := Load(strings.NewReader(lines(append(base,
		"      - {branch: hotfix/*, services: [shop_api]}",
		`jobs: {concurrency: "${JOBS}"}`,
	)...)), env(map[string]string{"SHOP_SECRET": "null", "JOBS": "3"}))
	if err != nil {
		t.Fatalf("one service in two targets of one project: %v", err)
	}
	if p, _ := c.Project("shop"); p.Secret != "null" {
		t.Errorf("a secret of %q read as %q", "null", p.Secret)
	}
	if c.Jobs.Concurrency != 3 {
		t.Errorf("a quoted ${JOBS} of 3 read as %d", c.Jobs.Concurrency)
	}
}

func TestLoadWarnings(t *testing.T) {
	long := "a-long-enough-webhook-secret"
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string
	}{
		{"nothing to say", lines(base...), map[string]string{"SHOP_SECRET": long}, nil},
		{"short webhook secret", lines(base...), map[string]string{"SHOP_SECRET": "hunter2"},
			[]string{"line 5: projects[0].secret: this secret is shorter than 16 bytes"}},
		{"short notify secret", lines(append(base,
			"    notify: {webhooks: [{url: \"https://hooks.example.com/x\", secret: hunter2}]}",
		)...), map[string]string{"SHOP_SECRET": long},
			[]string{"line 9: projects[0].notify.webhooks[0].secret: this secret is shorter than 16 bytes"}},
		{"registry password empty without a username", lines(append(base,
			"registry: {host: r:5000, password: \"${REGISTRY_PASSWORD}\"}",
		)[1:]...), map[string]string{"SHOP_SECRET": long, "REGISTRY_PASSWORD": ""},
			[]string{"line 8: registry.password: ${REGISTRY_PASSWORD} is empty, so registry credentials come from ~/.docker/config.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(strings.NewReader(tt.yaml), env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range c.Warnings() {
				got = append(got, w.String())
				if strings.Contains(w.String(), "hunter2") {
					t.Errorf("warning %q holds the secret", w)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("warnings = %q, want %d like %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("warning %q does not start %q", got[i], w)
				}
			}
		})
	}
}

func TestLoadWarnsOfAFileOthersCanRead(t *testing.T) {
	inline := lines(
		"tokens:",
		"  - {name: bot, token: inline-token-0123456789, scopes: [read]}",
		"registry: {host: r:5000}",
		"projects:",
		"  - name: shop",
		"    repo: file:///srv/shop.git",
		"    secret: inline-webhook-secret-0123",
		"    images: [{name: shop/api}]",
	)
	fromEnv := strings.NewReplacer("inline-token-0123456789", `"${TOKEN}"`, "inline-webhook-secret-0123", "${SECRET}").Replace(inline)
	vars := env(map[string]string{"TOKEN": "env-token-0123456789", "SECRET": "env-webhook-secret-0123"})
	tests := []struct {
		name string
		yaml string
		mode os.FileMode
		want string // empty: no warning
	}{
		{"inline secrets, world-readable", inline, 0o644, "every user can read this file (mode 0644) and it holds secrets itself: tokens[0].token (line 2), projects[0].secret (line 7)"},
		{"inline secrets, group-readable", inline, 0o640, ""},
		{"secrets from the environment, world-readable", fromEnv, 0o644, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			c, err := Load(f, vars)
			if err != nil {
				t.Fatal(err)
			}
			ws := c.Warnings()
			if tt.want == "" {
				if len(ws) != 0 {
					t.Errorf("warnings = %v, want none", ws)
				}
				return
			}
			if len(ws) != 1 || !strings.HasPrefix(ws[0].String(), tt.want) {
				t.Fatalf("warnings = %v, want one starting %q", ws, tt.want)
			}
			if strings.Contains(ws[0].String(), "inline-") {
				t.Errorf("warning %q holds a secret", ws[0])
			}
		})
	}
}

func TestLoadBoundsAliases(t *testing.T) {
	var b strings.Builder
	b.WriteString("projects:\n  - &p {name: p, repo: x, images: [{name: a}], deploy: [&d {branch: main, services: [&s a")
	b.WriteString(strings.Repeat(", *s", 600))
	b.WriteString("]}")
	b.WriteString(strings.Repeat(", *d", 600))
	b.WriteString("]}\n  - *p\n")
	_, err := Load(strings.NewReader(b.String()), env(nil))
	if err == nil || !strings.Contains(err.Error(), "line 2: projects[0].deploy[") || !strings.Contains(err.Error(), "are aliases nested too deep?") {
		t.Errorf("error = %.300v, want one saying the aliases stand for too many values", err)
	}
}
