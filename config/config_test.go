package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) LookupFunc {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const minimal = `
registry: {host: "127.0.0.1:5000", insecure: true}
projects:
  - name: shop
    repo: file:///srv/shop.git
    secret: ${SHOP_SECRET}
    images:
      - name: shop/api
      - {name: shop/web, context: web, build_args: {MODE: prod}}
    deploy:
      - branch: main
        services: [api, {name: web, image: shop/web}]
        update: {monitor: 2s, parallelism: 2}
`

func TestLoadMinimal(t *testing.T) {
	c, err := Load(strings.NewReader(minimal), env(map[string]string{"SHOP_SECRET": "s3cret: with #yaml chars"}))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := c.Project("shop")
	if !ok {
		t.Fatal("project shop missing")
	}
	if p.Secret != "s3cret: with #yaml chars" {
		t.Errorf("secret = %q", p.Secret)
	}
	if c.Listen != DefaultListen || c.Jobs.Concurrency != DefaultConcurrency || c.Webhook.MaxBodyBytes != DefaultMaxBody {
		t.Errorf("defaults not applied: %+v", c)
	}
	if p.Images[0].Context != "." || p.Images[0].Dockerfile != "Dockerfile" || p.Images[1].Context != "web" {
		t.Errorf("image defaults: %+v", p.Images)
	}
	if p.Images[1].BuildArgs["MODE"] != "prod" {
		t.Errorf("build args: %+v", p.Images[1].BuildArgs)
	}
	d, ok := p.DeployFor("main")
	if !ok {
		t.Fatal("no deploy for main")
	}
	if got := []Service{{Name: "api"}, {Name: "web", Image: "shop/web"}}; d.Services[0] != got[0] || d.Services[1] != got[1] {
		t.Errorf("services = %+v", d.Services)
	}
	if *d.Update.Parallelism != 2 || d.Update.Monitor.Duration != 2*time.Second || d.Update.Order != "stop-first" || d.Update.FailureAction != "rollback" {
		t.Errorf("update = %+v", d.Update)
	}
	if d.Pipeline != PipelineSequential {
		t.Errorf("pipeline = %q, want the default %q", d.Pipeline, PipelineSequential)
	}
	if !p.BuildsBranch("feature/x/y") {
		t.Error("default branches should build every branch")
	}
	if _, ok := p.DeployFor("dev"); ok {
		t.Error("dev should have no deploy target")
	}
	if p.BuildsTag("v1") || p.AllowUnsigned {
		t.Error("tags and unsigned deliveries must be opt-in")
	}
}

func TestTagsAndUnsignedOptIn(t *testing.T) {
	c, err := Load(strings.NewReader(`
registry: {host: "127.0.0.1:5000"}
projects:
  - name: tools
    repo: file:///srv/tools.git
    allow_unsigned: true
    tags: ["v*", "release/**"]
    images: [{name: tools}]
    deploy: [{branch: "v*", services: [tools]}]
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := c.Project("tools")
	if !p.AllowUnsigned {
		t.Error("allow_unsigned not read")
	}
	for tag, want := range map[string]bool{"v1.2": true, "release/2024/01": true, "nightly": false} {
		if got := p.BuildsTag(tag); got != want {
			t.Errorf("BuildsTag(%q) = %v, want %v", tag, got, want)
		}
	}
	if _, ok := p.DeployFor("v1.2"); !ok {
		t.Error("a deploy target's branch glob should match a tag name")
	}
}

func TestLoadErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"empty services", `
registry: {host: r:5000}
projects:
  - {name: a, repo: x, images: [{name: a}], deploy: [{branch: main, services: []}]}
  - {name: b, repo: x, images: [{name: b}], deploy: [{branch: main, services: []}]}`, "line 5: projects[1].deploy[0].services: must not be empty"},
		{"unknown key", "listen: :1\nlisten_addr: x\n", `line 2: unknown key "listen_addr" at the top level (known: listen, data_dir,`},
		{"missing env", "projects:\n  - name: a\n    secret: ${NOPE}\n", "line 3: projects[0].secret: environment variable NOPE is not set"},
		{"context escape", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a, context: ../etc}]}]`, `projects[0].images[0].context: "../etc" must be a relative path`},
		{"dockerfile escape", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a, dockerfile: /etc/passwd}]}]`, `projects[0].images[0].dockerfile`},
		{"bad image name", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: "Bad Name"}]}]`, `projects[0].images[0].name: "Bad Name" is not a valid repository name`},
		{"unknown service image", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}], deploy: [{branch: main, services: [{name: s, image: zz}]}]}]`, `projects[0].deploy[0].services[0].image: "zz" is not one of the project's images`},
		{"stack file escape", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}], deploy: [{branch: main, stack: {name: shop, file: ../compose.yml}}]}]`, `projects[0].deploy[0].stack.file: "../compose.yml" must be a relative path`},
		{"stack name", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}], deploy: [{branch: main, stack: {name: Shop/x, file: c.yml}}]}]`, `projects[0].deploy[0].stack.name: "Shop/x" must be lower-case`},
		{"stack name with underscore", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}], deploy: [{branch: main, stack: {name: a_b, file: c.yml}}]}]`, `projects[0].deploy[0].stack.name: "a_b" must be lower-case letters, digits and '-'`},
		{"stack twice", `
registry: {host: r:5000}
projects:
  - {name: a, repo: x, images: [{name: a}], deploy: [{branch: main, stack: {name: s, file: c.yml}}]}
  - {name: b, repo: x, images: [{name: b}], deploy: [{branch: main, stack: {name: s, file: c.yml}}]}`, `projects[1].deploy[0].stack.name: stack "s" is already deployed by projects[0].deploy[0].stack.name (line 4)`},
		{"service in a stack", `
registry: {host: r:5000}
projects:
  - {name: a, repo: x, images: [{name: a}], deploy: [{branch: main, stack: {name: s, file: c.yml}}]}
  - {name: b, repo: x, images: [{name: b}], deploy: [{branch: main, services: [s_api]}]}`, `projects[1].deploy[0].services[0].name: service "s_api" is in stack "s"`},
		{"stack key", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}], deploy: [{branch: main, stack: {name: s, file: c.yml, envfile: x}}]}]`, `unknown key "envfile"`},
		{"stack overlap", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}], deploy: [{branch: main, pipeline: overlap, stack: {name: s, file: c.yml}}]}]`, `pipeline: overlap cannot deploy a stack`},
		{"no registry", `projects: [{name: a, repo: x, images: [{name: a}]}]`, "registry.host: must be set"},
		{"bad duration", "jobs: {timeout: soon}\n", `"soon" is not a duration`},
		{"bad scope", `tokens: [{name: bot, token: 0123456789abcdef, scopes: [fly]}]`, `tokens[0].scopes[0]: unknown scope "fly"`},
		{"short token", `tokens: [{name: bot, token: short, scopes: [read]}]`, `tokens[0].token: must be at least 16 characters`},
		{"bad failure action", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}], deploy: [{branch: main, services: [s], update: {failure_action: explode}}]}]`, `projects[0].deploy[0].update.failure_action: "explode"`},
		{"bad pipeline", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}], deploy: [{branch: main, services: [s], pipeline: parallel}]}]`, `projects[0].deploy[0].pipeline: "parallel" must be sequential or overlap`},
		{"unsigned with secret", `
registry: {host: r:5000}
projects: [{name: a, repo: x, secret: s, allow_unsigned: true, images: [{name: a}]}]`, `projects[0].allow_unsigned: must not be set on a project with a secret`},
		{"bad tag glob", `
registry: {host: r:5000}
projects: [{name: a, repo: x, tags: [""], images: [{name: a}]}]`, `pattern is empty`},
		{"bad branch glob", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}], deploy: [{branch: "release/[0-9", services: [s]}]}]`, `line 3: projects[0].deploy[0].branch: "release/[0-9" is not a valid pattern`},
		{"bad public url", "public_url: deploy.example.com\n", "public_url: must be an absolute http:// or https:// URL"},
		{"bad slack url", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}], notify: {slack: ["hooks.slack.com/services/SECRET"]}}]`, "projects[0].notify.slack[0]: must be an absolute"},
		{"bad notify event", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}], notify: {on: [sucess]}}]`, `projects[0].notify.on[0]: unknown event "sucess"`},
		{"bad webhook url", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}], notify: {webhooks: [{url: "ftp://x/y"}]}}]`, "projects[0].notify.webhooks[0].url: must be an absolute"},
		{"unknown status provider", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}], status: {provider: svn, token: t, repo: a/b}}]`, `projects[0].status.provider: "svn" must be github, gitlab, gitea or forgejo`},
		{"gitea needs api_url", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}], status: {provider: gitea, token: t, repo: a/b}}]`, "projects[0].status.api_url: must be set for gitea"},
		{"status needs token", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}], status: {provider: github, repo: a/b}}]`, "projects[0].status.token: must be set"},
		{"github repo is owner/name", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}], status: {provider: github, token: t, repo: a/b/c}}]`, `projects[0].status.repo: "a/b/c" must be owner/name`},
		{"context escape inside path", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a, context: web/../../x}]}]`, `projects[0].images[0].context: "web/../../x" must be a relative path`},
		{"dockerfile escape upwards", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a, context: web, dockerfile: ../Dockerfile}]}]`, `projects[0].images[0].dockerfile: "../Dockerfile" must be a relative path inside the context`},
		{"unknown placeholder", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a, build_args: {V: "{{sha}}"}}]}]`, `projects[0].images[0].build_args.V: unknown placeholder {{sha}}`},
		{"reserved label", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a, labels: {io.swarmhook.project: b}}]}]`, `projects[0].images[0].labels.io.swarmhook.project: is set by swarmhook itself`},
		{"token over ssh", `
registry: {host: r:5000}
projects: [{name: a, repo: "git@example.com:team/a.git", git: {token: t}, images: [{name: a}]}]`, `projects[0].git.token: needs an http(s):// repo URL`},
		{"key over https", `
registry: {host: r:5000}
projects: [{name: a, repo: "https://example.com/a.git", git: {ssh_key_file: /k}, images: [{name: a}]}]`, `projects[0].git.ssh_key_file: needs an ssh://`},
		{"token and key", `
registry: {host: r:5000}
projects: [{name: a, repo: "ssh://git@example.com/a.git", git: {token: t, ssh_key_file: /k}, images: [{name: a}]}]`, `projects[0].git: token and ssh_key_file exclude each other`},
		{"relative key", `
registry: {host: r:5000}
projects: [{name: a, repo: "ssh://git@example.com/a.git", git: {ssh_key_file: k}, images: [{name: a}]}]`, `projects[0].git.ssh_key_file: "k" must be an absolute path`},
		{"build parallelism", `
registry: {host: r:5000}
projects: [{name: a, repo: x, build: {parallelism: -1}, images: [{name: a}]}]`, `projects[0].build.parallelism: must be at least 1`},
		{"build timeout over job timeout", `
registry: {host: r:5000}
jobs: {timeout: 10m}
projects: [{name: a, repo: x, build: {timeout: 1h}, images: [{name: a}]}]`, `projects[0].build.timeout: 1h0m0s is longer than jobs.timeout`},
		{"negative retries", `
registry: {host: r:5000, retries: -1}`, `registry.retries: must not be negative`},
		{"negative keep", `
docker: {keep_images: -2}`, `docker.keep_images: must be at least 1`},
		{"unknown builder", `
docker: {builder: kaniko}`, `docker.builder: "kaniko" must be`},
		{"bad secret id", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a, secrets: {"has space": v}}]}]`, `projects[0].images[0].secrets: "has space" is not a secret id`},
		{"secrets with the classic builder", `
registry: {host: r:5000}
docker: {builder: classic}
projects: [{name: a, repo: x, images: [{name: a, secrets: {npm: v}}]}]`, `projects[0].images[0].secrets: build secrets need docker.builder: buildkit`},
		{"secret from an unset variable", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a, secrets: {npm: "${NPM_TOKEN}"}}]}]`, `environment variable NPM_TOKEN is not set`},
		{"duplicate project", `
registry: {host: r:5000}
projects: [{name: a, repo: x, images: [{name: a}]}, {name: a, repo: x, images: [{name: a}]}]`, `projects[1].name: "a" is used twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tt.yaml), env(nil))
			if err == nil {
				t.Fatalf("Load accepted bad config, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestBuildSecretsLoad: a build secret's value comes from the
// environment, and an error about the image never repeats it.
func TestBuildSecretsLoad(t *testing.T) {
	yaml := `
registry: {host: r:5000}
docker: {builder: buildkit}
projects: [{name: a, repo: x, images: [{name: a, secrets: {npm: "${NPM_TOKEN}"}}, {name: "Bad Name", secrets: {npm: "${NPM_TOKEN}"}}]}]`
	_, err := Load(strings.NewReader(yaml), env(map[string]string{"NPM_TOKEN": "tok-123-secret"}))
	if err == nil || strings.Contains(err.Error(), "tok-123-secret") {
		t.Fatalf("want an error naming the bad image and never the secret, got %v", err)
	}
	c, err := Load(strings.NewReader(strings.Replace(yaml, `, {name: "Bad Name", secrets: {npm: "${NPM_TOKEN}"}}`, "", 1)), env(map[string]string{"NPM_TOKEN": "tok-123-secret"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Projects[0].Images[0].Secrets["npm"]; got != "tok-123-secret" {
		t.Errorf("secret npm = %q", got)
	}
	if c.Docker.Builder != BuilderBuildKit {
		t.Errorf("docker.builder = %q", c.Docker.Builder)
	}
}

func TestNotifyAndStatusDefaults(t *testing.T) {
	c, err := Load(strings.NewReader(`
registry: {host: r:5000}
public_url: https://deploy.example.com
projects:
  - {name: a, repo: x, images: [{name: a}], status: {provider: github, token: t, repo: acme/a}}
  - {name: b, repo: x, images: [{name: b}], status: {provider: gitlab, token: t, repo: "12", api_url: "https://git.example.com/"}, notify: {on: [started]}}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Projects[0], c.Projects[1]
	if a.Status.APIURL != DefaultGitHubAPI || a.Status.Context != DefaultStatusContext {
		t.Errorf("github status defaults: %+v", a.Status)
	}
	if b.Status.APIURL != "https://git.example.com" {
		t.Errorf("api_url %q: trailing slash should be trimmed", b.Status.APIURL)
	}
	if !a.Notify.Wants(EventFailure) || !a.Notify.Wants(EventSuccess) || a.Notify.Wants(EventStarted) {
		t.Errorf("default notify.on = %v", a.Notify.On)
	}
	if !b.Notify.Wants(EventStarted) || b.Notify.Wants(EventFailure) {
		t.Errorf("notify.on = %v, want only started", b.Notify.On)
	}
}

func TestBuildDefaults(t *testing.T) {
	c, err := Load(strings.NewReader(`
registry: {host: r:5000, retries: 0}
projects:
  - {name: a, repo: "https://example.com/a.git", git: {token: "${T}"}, images: [{name: a}]}
`), env(map[string]string{"T": "tok"}))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Projects[0]
	if p.Build.Parallelism != 1 || p.Build.Timeout.Duration != DefaultBuildTimeout {
		t.Errorf("build defaults = %+v", p.Build)
	}
	if p.Git.Username != DefaultGitUsername || p.Git.Token != "tok" {
		t.Errorf("git = %+v", p.Git)
	}
	if *c.Registry.Retries != 0 || c.Registry.RetryBackoff.Duration != DefaultRetryBackoff || c.Docker.KeepImages != DefaultKeepImages {
		t.Errorf("registry %+v docker %+v", c.Registry, c.Docker)
	}
}

func TestExpandPlaceholders(t *testing.T) {
	vars := map[string]string{"commit": "abc", "branch": "main"}
	tests := []struct{ in, want string }{
		{"{{commit}}", "abc"},
		{"v-{{ branch }}-{{commit}}", "v-main-abc"},
		{"{{nope}} {x}", "{{nope}} {x}"},
		{"plain", "plain"},
	}
	for _, tt := range tests {
		if got := ExpandPlaceholders(tt.in, vars); got != tt.want {
			t.Errorf("ExpandPlaceholders(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIsSSHURL(t *testing.T) {
	for url, want := range map[string]bool{
		"ssh://git@example.com/a.git": true, "git@github.com:team/a.git": true,
		"https://example.com/a.git": false, "file:///srv/a": false, "/srv/a": false,
	} {
		if IsSSHURL(url) != want {
			t.Errorf("IsSSHURL(%q) = %v", url, !want)
		}
	}
}

// TestGlob pins the one glob dialect (doublestar) on branch and tag
// names: '*' stays within a segment, '**' crosses '/', '.' is itself.
func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"main", "main", true},
		{"main", "maint", false},
		{"release/*", "release/1.2", true},
		{"release/*", "release/1/2", false},
		{"release/**", "release/1/2", true},
		{"**", "any/thing", true},
		{"v?", "v1", true},
		{"v?", "v/", false},
		{"a.b", "axb", false},
		{"feature/*", "feature/login", true},
		{"feature/*", "feature/login/fix", false},
		{"feature/**", "feature/login", true},
		{"feature/**", "feature/login/fix", true},
		{"feature/**", "feature", true}, // '**' is any number of segments, none too
		{"feature/**", "features/x", false},
		{"feat**", "feature", true}, // '**' inside a segment is a '*'
		{"feat**", "feat/x", false},
		{"release/1.*", "release/1.2", true},
		{"release/1.*", "release/1.2/hotfix", false},
		{"release/1.*", "release/10", false},
		{"release/[0-9]*", "release/2", true},
		{"{main,develop}", "develop", true},
	}
	for _, tt := range tests {
		if got := MustGlob(tt.pattern).Match(tt.name); got != tt.want {
			t.Errorf("Glob(%q).Match(%q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
	if (Glob{}).Match("") || (Glob{}).Match("main") {
		t.Error("the zero Glob matches")
	}
}

func TestGlobLiteral(t *testing.T) {
	for pattern, want := range map[string]bool{
		"main": true, "release/1.0": true,
		"release/*": false, "v?": false, "release/[0-9]": false, "{a,b}": false, `a\*`: false,
	} {
		if got := MustGlob(pattern).Literal(); got != want {
			t.Errorf("Glob(%q).Literal() = %v, want %v", pattern, got, want)
		}
	}
}

func TestNewGlobRefusesBadPatterns(t *testing.T) {
	for _, pattern := range []string{"", "release/[0-9", "{a,b"} {
		if _, err := NewGlob(pattern); err == nil {
			t.Errorf("NewGlob(%q) accepted it", pattern)
		}
	}
}

func TestExampleConfigLoads(t *testing.T) {
	f, err := os.Open("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := Load(f, env(map[string]string{"CHATOPS_TOKEN": "chatops-token-0123456789", "SHOP_WEBHOOK_SECRET": "shop-webhook-secret-0123", "SHOP_SLACK_WEBHOOK": "https://hooks.slack.com/services/T/B/X", "SHOP_NOTIFY_SECRET": "shop-notify-secret-0123", "SHOP_STATUS_TOKEN": "t", "SHOP_GIT_TOKEN": "t"}))
	if err != nil {
		t.Fatalf("config.example.yaml does not load: %v", err)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("config.example.yaml warns: %v", w)
	}
	if p, ok := c.Project("shop"); !ok || len(p.Deploy[0].Services) != 3 {
		t.Errorf("example project = %+v", p)
	}
}

// TestServiceTargetOfAStack: a stack target owns <stack>_<key>, and its
// listed keys are not Swarm names.
func TestServiceTargetOfAStack(t *testing.T) {
	c, err := Load(strings.NewReader(`
registry: {host: r:5000}
projects:
  - {name: a, repo: x, images: [{name: a}], deploy: [{branch: main, stack: {name: vipay, file: c.yml}, services: [{name: api, update: {parallelism: 3}}]}]}
  - {name: b, repo: x, images: [{name: b}], deploy: [{branch: main, services: [api]}]}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		service, project string
		parallelism      uint64
	}{
		{"vipay_api", "a", 3},
		{"vipay_web", "a", 0},
		{"api", "b", 0},
	}
	for _, tt := range tests {
		p, _, s, ok := c.ServiceTarget(tt.service)
		if !ok || p.Name != tt.project || s.Name != tt.service {
			t.Errorf("ServiceTarget(%s) = %v %+v %v, want project %s", tt.service, p, s, ok, tt.project)
			continue
		}
		if tt.parallelism != 0 && (s.Update == nil || *s.Update.Parallelism != tt.parallelism) {
			t.Errorf("ServiceTarget(%s) update %+v, want the listed key's", tt.service, s.Update)
		}
	}
	if _, _, _, ok := c.ServiceTarget("vipay_"); ok {
		t.Error("vipay_ matched")
	}
}

func TestDashboardConfig(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		ttl        time.Duration
		err        string
	}{
		{"default", ``, DefaultSessionTTL, ""},
		{"set", "dashboard: {session_ttl: 1h, private_badges: true}\n", time.Hour, ""},
		{"too short", "dashboard: {session_ttl: 1s}\n", 0, "dashboard.session_ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(strings.NewReader(tc.yaml), func(string) (string, bool) { return "", false })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Dashboard.SessionTTL.Duration != tc.ttl {
				t.Errorf("session_ttl %s, want %s", c.Dashboard.SessionTTL.Duration, tc.ttl)
			}
		})
	}
}

func TestServiceGroups(t *testing.T) {
	const head = "registry: {host: r:5000}\nprojects: [{name: a, repo: x, images: [{name: a}], deploy: [{branch: main, services: "
	tests := []struct {
		name, services string
		want           [][]string // the groups' members; nil when Load must fail
		err            string
	}{
		{"default one at a time", "[api, worker, web]", [][]string{{"api"}, {"worker"}, {"web"}}, ""},
		{"a group then a service", "[[api, worker], web]", [][]string{{"api", "worker"}, {"web"}}, ""},
		{"groups keep their order", "[db, [api, {name: worker, image: a}], [web]]", [][]string{{"db"}, {"api", "worker"}, {"web"}}, ""},
		{"empty group", "[api, []]", nil, "line 2: projects[0].deploy[0].services[1]: an empty group"},
		{"group in a group", "[[api, [worker]]]", nil, "line 2: projects[0].deploy[0].services[0][1]: a group holds services, not groups"},
		{"twice across groups", "[[api, web], [web]]", nil, `projects[0].deploy[0].services[1][0].name: "web" is listed twice`},
		{"after a group, the YAML's index", "[[api, web], {name: s, image: zz}]", nil, `projects[0].deploy[0].services[1].image: "zz" is not one of the project's images`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(strings.NewReader(head+tt.services+"}]}]\n"), env(nil))
			if tt.want == nil {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Load error = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got [][]string
			for _, g := range c.Projects[0].Deploy[0].Services.Groups() {
				var names []string
				for _, s := range g {
					names = append(names, s.Name)
				}
				got = append(got, names)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("groups = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStackRefusesGroupsAndPrePull(t *testing.T) {
	const head = "registry: {host: r:5000}\nprojects: [{name: a, repo: x, images: [{name: a}], deploy: [{branch: main, stack: {name: st, file: c.yml}, "
	tests := []struct{ name, target, want string }{
		{"groups", "services: [[api, web]]", "projects[0].deploy[0].services[0][0]: a stack's services roll one at a time"},
		{"pre_pull", "pre_pull: true", "projects[0].deploy[0].pre_pull: is not supported with a stack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(head+tt.target+"}]}]\n"), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
