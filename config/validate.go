package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/robfig/cron/v3"

	"github.com/swarmhook/swarmhook/window"
)

// Each section validates itself, given the key path it sits at (field),
// and records what is wrong in f: f names the key path as written in YAML
// and its line. A section checks what it holds; its parent checks what
// spans several of them (unique names, a service in one project).

// minSecretLength is in bytes; bearer tokens and webhook secrets shorter
// than this are guessable.
const minSecretLength = 16

// shortSecret warns of a webhook secret below minSecretLength. It is a
// warning, not an error: the secret is also set at the other end, and
// refusing it would stop deploys that work until both ends change.
var shortSecret = fmt.Sprintf("this secret is shorter than %d bytes, so one signed delivery lets it be guessed offline; set a longer random one (openssl rand -hex 32) here and at the other end", minSecretLength)

// validate records in f what is wrong with c, and what is weak.
func (c *Config) validate(f *findings) {
	for _, e := range f.emptySecrets {
		if e.field == "registry.password" && c.Registry.Username == "" {
			// The example shipped this way: no credentials in the file,
			// those of ~/.docker/config.json instead. Refusing now would
			// stop set-ups that work.
			f.warn(e.field, "%s empty, so registry credentials come from ~/.docker/config.json; remove the key if that is meant", e.varList())
			continue
		}
		f.bad(e.field, "%s set but empty; set it, or remove the key", e.varList())
	}
	if c.Jobs.Concurrency < 0 {
		f.bad("jobs.concurrency", "must be at least 1")
	}
	if c.PublicURL != "" {
		validHTTPURL(f, "public_url", c.PublicURL)
	}
	if c.Webhook.MaxBodyBytes < 0 {
		f.bad("webhook.max_body_bytes", "must be positive")
	}
	if c.Docker.KeepImages < 0 {
		f.bad("docker.keep_images", "must be at least 1")
	}
	if c.Docker.Builder != "" {
		checkChoice(f, "docker.builder", c.Docker.Builder, builders)
	}
	if c.Docker.Builder == BuilderClassic {
		for i, p := range c.Projects {
			for k, img := range p.Images {
				if len(img.Secrets) > 0 {
					f.bad(fmt.Sprintf("projects[%d].images[%d].secrets", i, k), "build secrets need docker.builder: buildkit")
				}
			}
		}
	}
	c.validateBuilders(f)
	c.Registry.validate(f, "registry")
	c.Prune.validate(f, "prune")
	c.Dashboard.validate(f, "dashboard")
	c.validateTokens(f)
	c.validateProjects(f)
	if c.Chat.Slack != nil {
		c.Chat.Slack.validate(f, "chat.slack")
	}
}

func (r *Registry) validate(f *findings, field string) {
	if *r.Retries < 0 {
		f.bad(field+".retries", "must not be negative")
	}
	if (r.Username == "") != (r.Password == "") {
		f.bad(field, "username and password go together")
	}
	if r.Host != "" {
		if _, err := name.NewRegistry(r.Host); err != nil || strings.Contains(r.Host, "/") {
			f.bad(field+".host", "%q is not a registry host[:port]", r.Host)
		}
	}
}

func (p *Prune) validate(f *findings, field string) {
	if p.Schedule != "" {
		if _, err := cron.ParseStandard(p.Schedule); err != nil {
			f.bad(field+".schedule", "%q is not a cron schedule (5 fields or @daily): %v", p.Schedule, err)
		}
	}
	if p.Concurrency < 0 {
		f.bad(field+".concurrency", "must be at least 1")
	}
	validateRetention(f, field+".retention", p.Retention)
}

func validateRetention(f *findings, field string, rs []Retention) {
	for i, r := range rs {
		if err := r.Rule().Validate(); err != nil {
			f.bad(fmt.Sprintf("%s[%d]", field, i), "%v", err)
		}
	}
}

// validateTokens checks each token, and that no two share a name or a
// value.
func (c *Config) validateTokens(f *findings) {
	names := map[string]bool{}
	values := map[string]int{}
	for i, t := range c.Tokens {
		field := fmt.Sprintf("tokens[%d]", i)
		t.validate(f, field)
		if t.Name != "" && names[t.Name] {
			f.bad(field+".name", "%q is used twice", t.Name)
		}
		names[t.Name] = true
		if j, dup := values[t.Token]; dup && t.Token != "" {
			// Looked up by value, one would take the other's scopes.
			f.bad(field+".token", "%q has the same value as %q (tokens[%d], line %d); give each token its own", t.Name, c.Tokens[j].Name, j, f.lineOf(fmt.Sprintf("tokens[%d].token", j)))
		} else {
			values[t.Token] = i
		}
	}
}

func (t *Token) validate(f *findings, field string) {
	if t.Name == "" {
		f.bad(field+".name", "must not be empty")
	}
	if len(t.Token) < minSecretLength {
		f.bad(field+".token", "must be at least %d characters", minSecretLength)
	}
	if len(t.Scopes) == 0 {
		f.bad(field+".scopes", "must not be empty")
	}
	for i, s := range t.Scopes {
		if !slices.Contains(scopes, s) {
			f.bad(fmt.Sprintf("%s.scopes[%d]", field, i), "unknown scope %q (want %s)", s, oneOf(scopes))
		}
	}
}

// validateProjects checks each project, that no two share a name, and
// that a service belongs to one project.
func (c *Config) validateProjects(f *findings) {
	names := map[string]bool{}
	type serviceOwner struct {
		project int
		field   string
	}
	owner := map[string]serviceOwner{}
	stacks := map[string]string{} // stack name -> field of its first target
	for i := range c.Projects {
		p := &c.Projects[i]
		field := fmt.Sprintf("projects[%d]", i)
		p.validate(f, field, c)
		if projectName.MatchString(p.Name) && names[p.Name] {
			f.bad(field+".name", "%q is used twice", p.Name)
		}
		names[p.Name] = true
		for j, d := range p.Deploy {
			if d.Stack != nil {
				// Two targets deploying one stack would undo each other.
				h := fmt.Sprintf("%s.deploy[%d].stack.name", field, j)
				if first, taken := stacks[d.Stack.Name]; taken {
					f.bad(h, "stack %q is already deployed by %s (line %d); a stack belongs to one deploy target", d.Stack.Name, first, f.lineOf(first))
				} else {
					stacks[d.Stack.Name] = h
				}
				continue // its services are keys of its stack file, named <stack>_<key>
			}
			for k, s := range d.Services {
				h := fmt.Sprintf("%s.deploy[%d].services%s", field, j, s.path(k))
				if o, taken := owner[s.Name]; taken && o.project != i {
					// Two projects' jobs could update it at once, and
					// rollback and scale would act for the first alone.
					f.bad(h+".name", "service %q is already deployed by project %q (%s, line %d); a service belongs to one project", s.Name, c.Projects[o.project].Name, o.field, f.lineOf(o.field))
				} else if !taken {
					owner[s.Name] = serviceOwner{project: i, field: h}
				}
			}
		}
	}
	// A stack owns every service named <stack>_...
	for name, o := range owner {
		if stack, _, ok := strings.Cut(name, "_"); ok {
			if first, taken := stacks[stack]; taken {
				f.bad(o.field+".name", "service %q is in stack %q (%s, line %d); a service belongs to one target", name, stack, first, f.lineOf(first))
			}
		}
	}
}

var projectName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// envName is what an environment may be called: like a project, so that
// "project/environment" names a target unambiguously.
var environmentName = projectName

// validate checks project p of configuration c, which bounds its build
// timeout and must name a registry for its images.
func (p *Project) validate(f *findings, field string, c *Config) {
	if !projectName.MatchString(p.Name) {
		f.bad(field+".name", "%q must be lower-case letters, digits, '.', '_' or '-'", p.Name)
	}
	if p.Repo == "" {
		f.bad(field+".repo", "must not be empty")
	}
	if p.AllowUnsigned && p.Secret != "" {
		f.bad(field+".allow_unsigned", "must not be set on a project with a secret: deliveries to it are always verified")
	}
	if p.Secret != "" && len(p.Secret) < minSecretLength {
		f.warn(field+".secret", "%s", shortSecret)
	}
	p.Notify.validate(f, field+".notify")
	if p.Status != nil {
		p.Status.validate(f, field+".status")
	}
	p.Git.validate(f, field+".git", p.Repo)
	c.validateBuildOn(f, field+".build.on", p.Build.On)
	if p.Build.Parallelism < 1 {
		f.bad(field+".build.parallelism", "must be at least 1")
	}
	if p.Build.Timeout.Duration > c.Jobs.Timeout.Duration {
		f.bad(field+".build.timeout", "%s is longer than jobs.timeout (%s), which bounds the whole job", p.Build.Timeout.Duration, c.Jobs.Timeout.Duration)
	}
	if len(p.Images) == 0 {
		f.bad(field+".images", "must not be empty")
	}
	validateRetention(f, field+".retention", p.Retention)
	if len(p.Images) > 0 && c.Registry.Host == "" {
		f.bad("registry.host", "must be set: %s pushes images", field)
	}
	images := map[string]bool{}
	for i := range p.Images {
		img := &p.Images[i]
		g := fmt.Sprintf("%s.images[%d]", field, i)
		if img.validate(f, g) && images[img.Name] {
			f.bad(g+".name", "%q is used twice", img.Name)
		}
		images[img.Name] = true
	}
	envs := map[string]bool{}
	for i := range p.Deploy {
		d := &p.Deploy[i]
		g := fmt.Sprintf("%s.deploy[%d]", field, i)
		d.validate(f, g, images)
		if d.Environment != "" && envs[d.Environment] {
			f.bad(g+".environment", "%q is used twice in this project", d.Environment)
		}
		envs[d.Environment] = true
	}
	for i, d := range p.Deploy {
		if d.PromoteFrom != "" && !envs[d.PromoteFrom] {
			f.bad(fmt.Sprintf("%s.deploy[%d].promote_from", field, i), "%q is no environment of this project", d.PromoteFrom)
		}
	}
}

// validate checks a project's Git credentials against its clone URL.
func (g *Git) validate(f *findings, field, repo string) {
	ssh := IsSSHURL(repo)
	switch {
	case g.Token != "" && g.SSHKeyFile != "":
		f.bad(field, "token and ssh_key_file exclude each other")
	case g.Token != "" && ssh:
		f.bad(field+".token", "needs an http(s):// repo URL; use ssh_key_file for SSH")
	case g.SSHKeyFile != "" && !ssh:
		f.bad(field+".ssh_key_file", "needs an ssh:// or user@host:path repo URL")
	case g.Username != "" && g.Token == "":
		f.bad(field+".username", "goes with token")
	case (g.KnownHosts != "" || g.SSHKeyPassphrase != "") && g.SSHKeyFile == "":
		f.bad(field, "known_hosts and ssh_key_passphrase go with ssh_key_file")
	}
	if g.SSHKeyFile != "" && !filepath.IsAbs(g.SSHKeyFile) {
		f.bad(field+".ssh_key_file", "%q must be an absolute path", g.SSHKeyFile)
	}
}

// scpLike matches Git's user@host:path form of SSH URLs.
var scpLike = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/]`)

// IsSSHURL reports whether a clone URL is fetched over SSH.
func IsSSHURL(repo string) bool {
	return strings.HasPrefix(repo, "ssh://") || scpLike.MatchString(repo)
}

// validate checks an image; it reports whether its name is valid, so the
// project can check names are unique.
// secretID is what RUN --mount=type=secret,id=ID takes.
var secretID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

func (img *Image) validate(f *findings, field string) bool {
	_, err := name.NewRepository("example.com/"+img.Name, name.StrictValidation)
	nameOK := err == nil && img.Name != ""
	if !nameOK {
		f.bad(field+".name", "%q is not a valid repository name", img.Name)
	}
	if !filepath.IsLocal(img.Context) {
		f.bad(field+".context", "%q must be a relative path inside the repository", img.Context)
	}
	if !filepath.IsLocal(img.Dockerfile) {
		f.bad(field+".dockerfile", "%q must be a relative path inside the context", img.Dockerfile)
	}
	for k, v := range img.BuildArgs {
		for _, m := range placeholder.FindAllStringSubmatch(v, -1) {
			if !slices.Contains(BuildArgPlaceholders, m[1]) {
				f.bad(field+".build_args."+k, "unknown placeholder %s (known: %s)", m[0], strings.Join(BuildArgPlaceholders, ", "))
			}
		}
	}
	for k := range img.Labels {
		if strings.HasPrefix(k, "io.swarmhook.") || strings.HasPrefix(k, "org.opencontainers.image.") {
			f.bad(field+".labels."+k, "is set by swarmhook itself")
		}
	}
	for id := range img.Secrets {
		if !secretID.MatchString(id) {
			f.bad(field+".secrets", "%q is not a secret id (letters, digits, '.', '_' and '-')", id)
		}
	}
	validateRetention(f, field+".retention", img.Retention)
	return nameOK
}

// validate checks a deploy target; images are the names of its project's
// images.
func (d *Deploy) validate(f *findings, field string, images map[string]bool) {
	if d.Branch.String() == "" && d.PromoteFrom == "" {
		f.bad(field+".branch", "must not be empty (or set promote_from)")
	}
	if d.Environment != "" && !environmentName.MatchString(d.Environment) {
		f.bad(field+".environment", "%q must be lower-case letters, digits, '.', '_' or '-'", d.Environment)
	}
	if d.PromoteFrom != "" {
		if d.Environment == "" {
			f.bad(field+".environment", "must be set on a target with promote_from")
		} else if d.PromoteFrom == d.Environment {
			f.bad(field+".promote_from", "%q is this target's own environment", d.PromoteFrom)
		}
	}
	if a := d.Approve; a != nil {
		if a.Scope != ScopeApprove && a.Scope != ScopeAdmin {
			f.bad(field+".approve.scope", "%q must be %s", a.Scope, oneOf([]Scope{ScopeApprove, ScopeAdmin}))
		}
	}
	for i, w := range d.Windows {
		if _, err := window.Parse(w.Start, w.Duration.Duration, w.TimeZone); err != nil {
			f.bad(fmt.Sprintf("%s.windows[%d]", field, i), "%v", err)
		}
	}
	if (d.Approve != nil || len(d.Windows) > 0 || d.PromoteFrom != "") && d.Stack != nil {
		f.bad(field+".stack", "a stack deploy reads the compose file from its build's checkout, so it cannot wait for an approval or a window, nor be promoted to; use them on image targets")
	}
	if (d.Approve != nil || len(d.Windows) > 0) && d.Pipeline == PipelineOverlap {
		f.bad(field+".pipeline", "overlap deploys while it builds, so it cannot wait for an approval or a window; use sequential")
	}
	if len(d.Services) == 0 && d.Stack == nil {
		f.bad(field+".services", "must not be empty")
	}
	if d.Stack != nil {
		d.Stack.validate(f, field+".stack")
		if d.Pipeline == PipelineOverlap {
			f.bad(field+".pipeline", "overlap cannot deploy a stack: its plan needs every image first")
		}
		// A stack rolls its services one at a time, by its own plan.
		for i, s := range d.Services {
			if s.Group != 0 {
				f.bad(field+".services"+s.path(i), "a stack's services roll one at a time: list them without groups")
				break
			}
		}
		if d.PrePull {
			f.bad(field+".pre_pull", "is not supported with a stack: a stack's services roll by its own plan")
		}
	}
	seen := map[string]bool{}
	for i, s := range d.Services {
		h := field + ".services" + s.path(i)
		if s.Name == "" {
			f.bad(h+".name", "must not be empty")
		} else if seen[s.Name] {
			f.bad(h+".name", "%q is listed twice", s.Name)
		}
		seen[s.Name] = true
		if s.Image != "" && !images[s.Image] {
			f.bad(h+".image", "%q is not one of the project's images", s.Image)
		}
	}
	d.Update.validate(f, field+".update")
	d.Rollback.validate(f, field+".rollback")
	for i, s := range d.Services {
		if s.Update != nil {
			s.Update.validate(f, field+".services"+s.path(i)+".update")
		}
	}
	checkChoice(f, field+".on_failure", d.OnFailure, onFailures)
	checkChoice(f, field+".pipeline", d.Pipeline, pipelines)
}

// stackName has no '_', so the stack a name <stack>_<key> belongs to is
// the part before its first '_': stack a's key b_c can never be stack
// a_b's c.
var stackName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,49}$`)

// validate checks a deploy target's stack.
func (s *Stack) validate(f *findings, field string) {
	if !stackName.MatchString(s.Name) {
		f.bad(field+".name", "%q must be lower-case letters, digits and '-', at most 50", s.Name)
	}
	if s.File == "" || !filepath.IsLocal(s.File) {
		f.bad(field+".file", "%q must be a relative path inside the repository", s.File)
	}
}

// validate checks one update or rollback section. A key left empty is
// fine: the target's update section has its defaults, and its rollback
// and per-service sections take what they leave out from it.
func (u *Update) validate(f *findings, field string) {
	if u.FailureAction != "" {
		checkChoice(f, field+".failure_action", u.FailureAction, failureActions)
	}
	if u.Order != "" {
		checkChoice(f, field+".order", u.Order, orders)
	}
	if r := u.MaxFailureRatio; r < 0 || r > 1 {
		f.bad(field+".max_failure_ratio", "%v must be between 0 and 1", r)
	}
}

func (n *Notify) validate(f *findings, field string) {
	for i, u := range n.Slack {
		validHTTPURL(f, fmt.Sprintf("%s.slack[%d]", field, i), u)
	}
	for i, w := range n.Webhooks {
		g := fmt.Sprintf("%s.webhooks[%d]", field, i)
		validHTTPURL(f, g+".url", w.URL)
		if w.Secret != "" && len(w.Secret) < minSecretLength {
			f.warn(g+".secret", "%s", shortSecret)
		}
	}
	for i, e := range n.On {
		if !slices.Contains(events, e) {
			f.bad(fmt.Sprintf("%s.on[%d]", field, i), "unknown event %q (want %s)", e, oneOf(events))
		}
	}
}

func (s *CommitStatus) validate(f *findings, field string) {
	switch s.Provider {
	case ProviderGitHub, ProviderGitea, ProviderForgejo:
		if owner, name, ok := strings.Cut(s.Repo, "/"); !ok || owner == "" || name == "" || strings.Contains(name, "/") {
			f.bad(field+".repo", "%q must be owner/name", s.Repo)
		}
	case ProviderGitLab:
		if s.Repo == "" || strings.HasPrefix(s.Repo, "/") || strings.HasSuffix(s.Repo, "/") {
			f.bad(field+".repo", "%q must be the project's id or path group/name", s.Repo)
		}
	default:
		checkChoice(f, field+".provider", s.Provider, providers)
	}
	if s.APIURL == "" {
		f.bad(field+".api_url", "must be set for %s", s.Provider)
	} else {
		validHTTPURL(f, field+".api_url", s.APIURL)
	}
	if s.Token == "" {
		f.bad(field+".token", "must be set")
	}
}

// validHTTPURL checks that raw is an absolute http(s) URL. The URL is not
// repeated in the error: notification URLs carry secrets.
func validHTTPURL(f *findings, field, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		f.bad(field, "must be an absolute http:// or https:// URL")
	}
}
