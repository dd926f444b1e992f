package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/swarmhook/swarmhook/tagpolicy"
)

// Defaults applied where the file is silent. Each is what a single small
// team would want on first start; all can be overridden.
const (
	DefaultListen         = ":8080"
	DefaultDataDir        = "/var/lib/swarmhook"
	DefaultConcurrency    = 2                   // builds at once: a build uses most of a core
	DefaultJobTimeout     = 30 * time.Minute    // a whole job, build and deploy
	DefaultServiceTimeout = 10 * time.Minute    // one service's rolling update
	DefaultKeep           = 90 * 24 * time.Hour // job history: a quarter is plenty to answer "what ran when"
	DefaultMaxBody        = 5 << 20             // webhook bodies; GitHub caps payloads at 25 MB but pushes are far smaller
	DefaultContext        = "."
	DefaultDockerfile     = "Dockerfile"
	DefaultParallelism    = 1 // one task at a time: a rolling update
	DefaultFailureAction  = "rollback"
	DefaultOrder          = "stop-first" // start-first would clash with host-mode ports
	DefaultMonitor        = 5 * time.Second
	DefaultFailurePolicy  = "stop"
	DefaultBranchPattern  = "**"
	DefaultPipeline       = PipelineSequential // a failed build never leaves a half-deployed stack
	DefaultKeepImages     = 3                  // per image on the builder: the running one, and two to roll back to without a pull
	DefaultBuildTimeout   = 20 * time.Minute   // one project's builds; below the job timeout so a stuck build leaves time to report
	DefaultRetries        = 3                  // registry attempts after the first: rides out a registry restart
	DefaultRetryBackoff   = time.Second        // first pause between registry attempts; doubles each time
	DefaultGitUsername    = "x-access-token"   // what GitHub expects with a token; GitLab takes any non-empty name
	DefaultPruneWorkers   = 8                  // registry requests at once during a prune: fast, yet gentle on a small registry
	minSecretLength       = 16                 // bytes; bearer tokens and webhook secrets shorter than this are guessable
)

// shortSecret warns of a webhook secret below minSecretLength. It is a
// warning, not an error: the secret is also set at the other end, and
// refusing it would stop deploys that work until both ends change.
var shortSecret = fmt.Sprintf("this secret is shorter than %d bytes, so one signed delivery lets it be guessed offline; set a longer random one (openssl rand -hex 32) here and at the other end", minSecretLength)

// Scopes a token may carry.
var knownScopes = map[string]bool{"read": true, "deploy": true, "rollback": true, "scale": true, "admin": true}

// Config is the whole configuration file.
type Config struct {
	// Listen is the HTTP listen address.
	Listen string `yaml:"listen"`
	// DataDir holds the job store, job logs and repository mirrors.
	DataDir string `yaml:"data_dir"`
	// PublicURL is where people reach this service, for links in
	// notifications; optional.
	PublicURL string `yaml:"public_url"`
	// Docker says how to reach the engine.
	Docker Docker `yaml:"docker"`
	// Registry is the private registry images are pushed to.
	Registry Registry `yaml:"registry"`
	// Tokens grant access to the HTTP API.
	Tokens []Token `yaml:"tokens"`
	// Jobs bounds the job runner.
	Jobs Jobs `yaml:"jobs"`
	// Webhook bounds webhook intake.
	Webhook Webhook `yaml:"webhook"`
	// Prune deletes old timestamped tags from the registry.
	Prune Prune `yaml:"prune"`
	// Projects are the repositories swarmhook builds and deploys.
	Projects []Project `yaml:"projects"`

	// warnings are what Load found that works but should be changed.
	warnings []Warning
}

// Warnings are what Load found that works but weakens swarmhook (a short
// webhook secret, secrets in a file every user can read); the caller logs
// them at start. They never hold a secret.
func (c *Config) Warnings() []Warning { return c.warnings }

// Docker says how to reach the Docker engine.
type Docker struct {
	// Host is the engine address (unix:///var/run/docker.sock,
	// tcp://host:2376); empty means DOCKER_HOST or the default socket.
	Host string `yaml:"host"`
	// KeepImages is how many images this service built are kept on the
	// engine per image repository; older ones are removed after each
	// successful push so a busy builder's disk does not fill.
	KeepImages int `yaml:"keep_images"`
}

// Registry is the registry images are pushed to and services pull from.
type Registry struct {
	// Host is host[:port] of the registry, e.g. registry.example.com:5000.
	Host string `yaml:"host"`
	// Insecure allows plain HTTP.
	Insecure bool `yaml:"insecure"`
	// Username and Password are basic-auth credentials; both or neither.
	Username string `yaml:"username"`
	Password string `yaml:"password" secret:"true"`
	// Retries is how many times a push or tag move that failed with a
	// transient error (5xx, connection reset or refused) is tried again
	// before the job fails; nil means DefaultRetries, 0 none.
	Retries *int `yaml:"retries"`
	// RetryBackoff is the pause before the first retry; it doubles for
	// each later one.
	RetryBackoff Duration `yaml:"retry_backoff"`
}

// Token is one API bearer token.
type Token struct {
	// Name says whose token it is; it is recorded on every job it starts.
	Name string `yaml:"name"`
	// Token is the secret itself.
	Token string `yaml:"token" secret:"true"`
	// Scopes are what it may do: read, deploy, rollback, scale, admin.
	Scopes []string `yaml:"scopes"`
}

// Jobs bounds the job runner.
type Jobs struct {
	// Concurrency is how many jobs build at once.
	Concurrency int `yaml:"concurrency"`
	// Timeout bounds one whole job.
	Timeout Duration `yaml:"timeout"`
	// Keep is how long finished jobs and their logs are kept.
	Keep Duration `yaml:"keep"`
}

// Webhook bounds webhook intake.
type Webhook struct {
	// MaxBodyBytes is the largest delivery accepted.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// Prune says when and how old <branch>-<timestamp> tags are deleted.
type Prune struct {
	// Schedule is a cron expression (5 fields, or @daily, @hourly...) in
	// the server's time zone; empty runs no scheduled prune (the API and
	// "swarmhook prune" still work).
	Schedule string `yaml:"schedule"`
	// Concurrency is how many registry requests a prune makes at once.
	Concurrency int `yaml:"concurrency"`
	// Retention are the default rules for every image; a project's or an
	// image's own retention replaces them. Empty keeps the newest 10 tags
	// of every branch.
	Retention []Retention `yaml:"retention"`
}

// Retention is one retention rule; see tagpolicy.Rule.
type Retention struct {
	// Branches are globs of branch names ('/' matches '-' as in tags);
	// empty matches every branch.
	Branches []string `yaml:"branches"`
	// KeepLast is how many newest tags of each branch stay; default 10.
	KeepLast int `yaml:"keep_last"`
	// KeepWithin keeps every tag younger than this as well.
	KeepWithin Duration `yaml:"keep_within"`
}

// Rule converts the rule for tagpolicy.
func (r Retention) Rule() tagpolicy.Rule {
	return tagpolicy.Rule{Branches: r.Branches, KeepLast: r.KeepLast, KeepWithin: r.KeepWithin.Duration}
}

// RetentionFor returns the rules for image img of project p: the image's
// own, else the project's, else the defaults under prune.
func (c *Config) RetentionFor(p *Project, img *Image) []tagpolicy.Rule {
	rs := c.Prune.Retention
	if len(p.Retention) > 0 {
		rs = p.Retention
	}
	if len(img.Retention) > 0 {
		rs = img.Retention
	}
	if len(rs) == 0 {
		return []tagpolicy.Rule{tagpolicy.DefaultRule()}
	}
	out := make([]tagpolicy.Rule, len(rs))
	for i, r := range rs {
		out[i] = r.Rule()
	}
	return out
}

// Project is one Git repository and what to build and deploy from it.
type Project struct {
	// Name appears in the webhook URL /hooks/{name}.
	Name string `yaml:"name"`
	// Repo is the clone URL (file://, http(s)://, ssh:// or user@host:path).
	Repo string `yaml:"repo"`
	// Secret verifies webhook signatures.
	Secret string `yaml:"secret" secret:"true"`
	// AllowUnsigned accepts deliveries without a signature. It must be set
	// explicitly, and only on a project without a secret: an empty secret
	// alone refuses every delivery.
	AllowUnsigned bool `yaml:"allow_unsigned"`
	// Branches are globs of branches that build; ** matches across '/'.
	Branches []Glob `yaml:"branches"`
	// Tags are globs of Git tags that build; none by default. A tag builds
	// and deploys with its name in place of the branch's, so deploy
	// targets' branch globs are matched against the tag name.
	Tags []Glob `yaml:"tags"`
	// Git says how to authenticate to the repository and whether to
	// check out submodules.
	Git Git `yaml:"git"`
	// Build bounds the project's image builds.
	Build Build `yaml:"build"`
	// Images are built from each push, Build.Parallelism at a time.
	Images []Image `yaml:"images"`
	// Deploy says which services to update for which branches.
	Deploy []Deploy `yaml:"deploy"`
	// Notify sends job results to chat and HTTP endpoints.
	Notify Notify `yaml:"notify"`
	// Status posts commit statuses back to the Git host; nil posts none.
	Status *CommitStatus `yaml:"status"`
	// Retention replaces prune.retention for this project's images.
	Retention []Retention `yaml:"retention"`
}

// Git holds a project's repository credentials. At most one of Token and
// SSHKeyFile is set; secrets here never reach a log or an error.
type Git struct {
	// Username goes with Token over HTTPS; DefaultGitUsername when empty.
	Username string `yaml:"username"`
	// Token is an HTTPS access token, sent as the basic-auth password.
	Token string `yaml:"token" secret:"true"`
	// SSHKeyFile is the path of a private deploy key for ssh:// and
	// user@host:path URLs.
	SSHKeyFile string `yaml:"ssh_key_file"`
	// SSHKeyPassphrase decrypts SSHKeyFile when it is encrypted.
	SSHKeyPassphrase string `yaml:"ssh_key_passphrase" secret:"true"`
	// KnownHosts is a known_hosts file the server's host key must be in;
	// empty means $SSH_KNOWN_HOSTS or ~/.ssh/known_hosts. Host keys are
	// always checked.
	KnownHosts string `yaml:"known_hosts"`
	// Submodules checks out the commit's submodules too, recursively,
	// with the same credentials.
	Submodules bool `yaml:"submodules"`
}

// Build bounds a project's image builds.
type Build struct {
	// Parallelism is how many of the project's images build at once.
	Parallelism int `yaml:"parallelism"`
	// Timeout bounds all of one job's builds together.
	Timeout Duration `yaml:"timeout"`
}

// BuildArgPlaceholders are the names build arg values may use as
// {{name}}: the pushed commit, its first 12 characters, the branch (or tag)
// name, the build's UTC timestamp as in the image tag, and the timestamped
// tag itself.
var BuildArgPlaceholders = []string{"commit", "short_commit", "branch", "timestamp", "tag"}

// placeholder matches one {{name}} in a build arg value.
var placeholder = regexp.MustCompile(`\{\{\s*([A-Za-z_]+)\s*\}\}`)

// ExpandPlaceholders replaces every {{name}} in v with vars[name]; unknown
// names are left as written (Load refuses them).
func ExpandPlaceholders(v string, vars map[string]string) string {
	return placeholder.ReplaceAllStringFunc(v, func(m string) string {
		if r, ok := vars[placeholder.FindStringSubmatch(m)[1]]; ok {
			return r
		}
		return m
	})
}

// Image is one image built from a project.
type Image struct {
	// Name is the repository in the registry, e.g. shop/api.
	Name string `yaml:"name"`
	// Context is the build context, relative to the repository root.
	Context string `yaml:"context"`
	// Dockerfile is relative to the context.
	Dockerfile string `yaml:"dockerfile"`
	// BuildArgs are passed as --build-arg; values may use the
	// BuildArgPlaceholders as {{commit}}, {{branch}} and so on.
	BuildArgs map[string]string `yaml:"build_args"`
	// Target is the Dockerfile stage to build; empty builds the last.
	Target string `yaml:"target"`
	// Labels are added to the image, besides the OCI ones swarmhook
	// always sets.
	Labels map[string]string `yaml:"labels"`
	// NoCache builds every step afresh.
	NoCache bool `yaml:"no_cache"`
	// Retention replaces the project's retention for this image.
	Retention []Retention `yaml:"retention"`
}

// Pipeline modes of a deploy target.
const (
	// PipelineSequential builds, pushes and tags every image before the
	// first service is touched.
	PipelineSequential = "sequential"
	// PipelineOverlap rolls each service as soon as its own image is
	// pushed and tagged and the service before it has converged, while
	// later images still build.
	PipelineOverlap = "overlap"
)

// Deploy is one deploy target: services updated, in order, for pushes to
// matching branches.
type Deploy struct {
	// Branch selects the pushes this target deploys.
	Branch Glob `yaml:"branch"`
	// Services are updated strictly one after another, in this order.
	Services []Service `yaml:"services"`
	// Update holds the rolling-update settings for these services.
	Update Update `yaml:"update"`
	// Timeout bounds each service's update.
	Timeout Duration `yaml:"timeout"`
	// Rollback holds Swarm's own rollback settings for these services;
	// empty means the update's pace.
	Rollback Update `yaml:"rollback"`
	// OnFailure is stop (later services are left untouched) or
	// rollback_all (services this job already updated go back, in reverse
	// order, to what they ran before).
	OnFailure string `yaml:"on_failure"`
	// Pipeline is sequential (every image is built, pushed and tagged
	// before any service changes) or overlap (a service starts rolling as
	// soon as its own image is ready, so a later image's failed build can
	// leave earlier services on the new version).
	Pipeline string `yaml:"pipeline"`
}

// Service is one Swarm service of a deploy target. In YAML it is either a
// plain name or a mapping {name, image}.
type Service struct {
	// Name is the Swarm service name.
	Name string `yaml:"name"`
	// Image names which of the project's images the service runs; empty
	// means the one whose repository the service runs now.
	Image string `yaml:"image"`
	// Update overrides the target's update settings for this service;
	// keys left out keep the target's values.
	Update *Update `yaml:"update"`
}

// UpdateFor returns the update settings for service s of target d: the
// target's, with what the service sets itself on top.
func (d *Deploy) UpdateFor(s Service) Update {
	u := d.Update
	o := s.Update
	if o == nil {
		return u
	}
	if o.Parallelism != nil {
		u.Parallelism = o.Parallelism
	}
	if o.Delay.Duration != 0 {
		u.Delay = o.Delay
	}
	if o.FailureAction != "" {
		u.FailureAction = o.FailureAction
	}
	if o.Order != "" {
		u.Order = o.Order
	}
	if o.Monitor.Duration != 0 {
		u.Monitor = o.Monitor
	}
	if o.MaxFailureRatio != 0 {
		u.MaxFailureRatio = o.MaxFailureRatio
	}
	return u
}

// ServiceTarget finds the first deploy target that lists service name,
// with its project and entry.
func (c *Config) ServiceTarget(name string) (*Project, *Deploy, Service, bool) {
	for i := range c.Projects {
		p := &c.Projects[i]
		for j := range p.Deploy {
			for _, s := range p.Deploy[j].Services {
				if s.Name == name {
					return p, &p.Deploy[j], s, true
				}
			}
		}
	}
	return nil, nil, Service{}, false
}

// UnmarshalYAML accepts both "api" and {name: api, image: shop/api}.
func (s *Service) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		s.Name = n.Value
		return nil
	}
	type plain Service
	return n.Decode((*plain)(s))
}

// Update holds Swarm rolling-update settings.
type Update struct {
	// Parallelism is how many tasks update at once.
	Parallelism *uint64 `yaml:"parallelism"`
	// Delay is the pause between batches.
	Delay Duration `yaml:"delay"`
	// FailureAction is rollback, pause or continue.
	FailureAction string `yaml:"failure_action"`
	// Order is stop-first or start-first.
	Order string `yaml:"order"`
	// Monitor is how long Swarm watches each task for failure.
	Monitor Duration `yaml:"monitor"`
	// MaxFailureRatio is the share of failed tasks tolerated.
	MaxFailureRatio float32 `yaml:"max_failure_ratio"`
}

// Duration is a time.Duration written as "90s" or "5m".
type Duration struct{ time.Duration }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration like 30s or 5m", n.Value)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", n.Value)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration back as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Glob is a branch pattern: '*' matches within one path segment, '**'
// across '/', '?' one character.
type Glob struct {
	pattern string
	re      *regexp.Regexp
}

// NewGlob compiles a pattern.
func NewGlob(pattern string) (Glob, error) {
	if pattern == "" {
		return Glob{}, errors.New("pattern is empty")
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			if i+1 < len(pattern) && pattern[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return Glob{pattern: pattern, re: regexp.MustCompile(b.String())}, nil
}

// MustGlob is NewGlob for patterns known to be valid.
func MustGlob(pattern string) Glob {
	g, err := NewGlob(pattern)
	if err != nil {
		panic(err)
	}
	return g
}

// Match reports whether name matches the pattern.
func (g Glob) Match(name string) bool { return g.re != nil && g.re.MatchString(name) }

// String returns the pattern as written.
func (g Glob) String() string { return g.pattern }

// UnmarshalYAML compiles the pattern.
func (g *Glob) UnmarshalYAML(n *yaml.Node) error {
	v, err := NewGlob(n.Value)
	if err != nil {
		return err
	}
	*g = v
	return nil
}

// MarshalYAML writes the pattern back.
func (g Glob) MarshalYAML() (any, error) { return g.pattern, nil }

// Project returns the project called name.
func (c *Config) Project(name string) (*Project, bool) {
	for i := range c.Projects {
		if c.Projects[i].Name == name {
			return &c.Projects[i], true
		}
	}
	return nil, false
}

// BuildsBranch reports whether pushes to branch build at all.
func (p *Project) BuildsBranch(branch string) bool {
	for _, g := range p.Branches {
		if g.Match(branch) {
			return true
		}
	}
	return false
}

// BuildsTag reports whether pushes of tag build at all.
func (p *Project) BuildsTag(tag string) bool {
	for _, g := range p.Tags {
		if g.Match(tag) {
			return true
		}
	}
	return false
}

// DeployFor returns the first deploy target whose branch pattern matches.
func (p *Project) DeployFor(branch string) (*Deploy, bool) {
	for i := range p.Deploy {
		if p.Deploy[i].Branch.Match(branch) {
			return &p.Deploy[i], true
		}
	}
	return nil, false
}

// Image returns the project's image called name.
func (p *Project) Image(name string) (*Image, bool) {
	for i := range p.Images {
		if p.Images[i].Name == name {
			return &p.Images[i], true
		}
	}
	return nil, false
}

// LookupFunc finds an environment variable; os.LookupEnv in production.
type LookupFunc func(key string) (string, bool)

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Load reads, expands, defaults and validates a configuration. Errors
// name the key path as written in YAML and its line in the file, and never
// repeat a secret. Secrets written as ${VAR} must not come out empty, API
// tokens must be unique, and a service belongs to one project. When r is a
// file (it has a Stat method), Load also warns if every user may read it
// while it holds secrets itself rather than as ${VAR}; see Warnings.
func Load(r io.Reader, lookup LookupFunc) (*Config, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	var c Config
	f := newFindings()
	if len(doc.Content) > 0 {
		root := doc.Content[0]
		f.scan(root, reflect.TypeFor[Config](), "", false, lookup)
		if len(f.errs) > 0 {
			return nil, errors.Join(f.errs...)
		}
		if err := root.Decode(&c); err != nil {
			return nil, fmt.Errorf("decode config: %w", err)
		}
	}
	if file, ok := r.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := file.Stat(); err == nil {
			f.checkMode(fi.Mode())
		}
	}
	c.applyDefaults()
	c.validate(f)
	if len(f.errs) > 0 {
		return nil, errors.Join(f.errs...)
	}
	c.warnings = f.warnings
	return &c, nil
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Jobs.Concurrency == 0 {
		c.Jobs.Concurrency = DefaultConcurrency
	}
	if c.Jobs.Timeout.Duration == 0 {
		c.Jobs.Timeout.Duration = DefaultJobTimeout
	}
	if c.Jobs.Keep.Duration == 0 {
		c.Jobs.Keep.Duration = DefaultKeep
	}
	if c.Webhook.MaxBodyBytes == 0 {
		c.Webhook.MaxBodyBytes = DefaultMaxBody
	}
	if c.Docker.KeepImages == 0 {
		c.Docker.KeepImages = DefaultKeepImages
	}
	if c.Registry.Retries == nil {
		n := DefaultRetries
		c.Registry.Retries = &n
	}
	if c.Registry.RetryBackoff.Duration == 0 {
		c.Registry.RetryBackoff.Duration = DefaultRetryBackoff
	}
	if c.Prune.Concurrency == 0 {
		c.Prune.Concurrency = DefaultPruneWorkers
	}
	defaultRetention(c.Prune.Retention)
	for i := range c.Projects {
		p := &c.Projects[i]
		defaultRetention(p.Retention)
		for j := range p.Images {
			defaultRetention(p.Images[j].Retention)
		}
		p.Notify.applyDefaults()
		if p.Status != nil {
			p.Status.applyDefaults()
		}
		if p.Build.Parallelism == 0 {
			p.Build.Parallelism = 1
		}
		if p.Build.Timeout.Duration == 0 {
			p.Build.Timeout.Duration = min(DefaultBuildTimeout, c.Jobs.Timeout.Duration)
		}
		if p.Git.Token != "" && p.Git.Username == "" {
			p.Git.Username = DefaultGitUsername
		}
		if len(p.Branches) == 0 {
			p.Branches = []Glob{MustGlob(DefaultBranchPattern)}
		}
		for j := range p.Images {
			img := &p.Images[j]
			if img.Context == "" {
				img.Context = DefaultContext
			}
			if img.Dockerfile == "" {
				img.Dockerfile = DefaultDockerfile
			}
		}
		for j := range p.Deploy {
			d := &p.Deploy[j]
			if d.Timeout.Duration == 0 {
				d.Timeout.Duration = DefaultServiceTimeout
			}
			if d.OnFailure == "" {
				d.OnFailure = DefaultFailurePolicy
			}
			if d.Pipeline == "" {
				d.Pipeline = DefaultPipeline
			}
			u := &d.Update
			if u.Parallelism == nil {
				p := uint64(DefaultParallelism)
				u.Parallelism = &p
			}
			if u.FailureAction == "" {
				u.FailureAction = DefaultFailureAction
			}
			if u.Order == "" {
				u.Order = DefaultOrder
			}
			if u.Monitor.Duration == 0 {
				u.Monitor.Duration = DefaultMonitor
			}
		}
	}
}

func defaultRetention(rs []Retention) {
	for i := range rs {
		if rs[i].KeepLast == 0 {
			rs[i].KeepLast = tagpolicy.DefaultKeepLast
		}
	}
}

func validateRetention(field string, rs []Retention, bad func(field, format string, args ...any)) {
	for i, r := range rs {
		if err := r.Rule().Validate(); err != nil {
			bad(fmt.Sprintf("%s[%d]", field, i), "%v", err)
		}
	}
}

// validate checks one update or rollback section; partial sections may
// leave keys empty.
func (u *Update) validate(field string, partial bool, bad func(field, format string, args ...any)) {
	switch u.FailureAction {
	case "rollback", "pause", "continue":
	case "":
		if !partial {
			bad(field+".failure_action", "must be set")
		}
	default:
		bad(field+".failure_action", "%q must be rollback, pause or continue", u.FailureAction)
	}
	switch u.Order {
	case "stop-first", "start-first":
	case "":
		if !partial {
			bad(field+".order", "must be set")
		}
	default:
		bad(field+".order", "%q must be stop-first or start-first", u.Order)
	}
	if r := u.MaxFailureRatio; r < 0 || r > 1 {
		bad(field+".max_failure_ratio", "%v must be between 0 and 1", r)
	}
}

// validate checks a project's Git credentials against its clone URL.
func (g *Git) validate(field, repo string, bad func(field, format string, args ...any)) {
	ssh := IsSSHURL(repo)
	switch {
	case g.Token != "" && g.SSHKeyFile != "":
		bad(field, "token and ssh_key_file exclude each other")
	case g.Token != "" && ssh:
		bad(field+".token", "needs an http(s):// repo URL; use ssh_key_file for SSH")
	case g.SSHKeyFile != "" && !ssh:
		bad(field+".ssh_key_file", "needs an ssh:// or user@host:path repo URL")
	case g.Username != "" && g.Token == "":
		bad(field+".username", "goes with token")
	case (g.KnownHosts != "" || g.SSHKeyPassphrase != "") && g.SSHKeyFile == "":
		bad(field, "known_hosts and ssh_key_passphrase go with ssh_key_file")
	}
	if g.SSHKeyFile != "" && !filepath.IsAbs(g.SSHKeyFile) {
		bad(field+".ssh_key_file", "%q must be an absolute path", g.SSHKeyFile)
	}
}

// scpLike matches Git's user@host:path form of SSH URLs.
var scpLike = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/]`)

// IsSSHURL reports whether a clone URL is fetched over SSH.
func IsSSHURL(repo string) bool {
	return strings.HasPrefix(repo, "ssh://") || scpLike.MatchString(repo)
}

var projectName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// validate records in found what is wrong with c, and what is weak.
func (c *Config) validate(found *findings) {
	bad := found.bad
	for _, e := range found.emptySecrets {
		if e.field == "registry.password" && c.Registry.Username == "" {
			// The example shipped this way: no credentials in the file,
			// those of ~/.docker/config.json instead. Refusing now would
			// stop set-ups that work.
			found.warn(e.field, "%s empty, so registry credentials come from ~/.docker/config.json; remove the key if that is meant", e.varList())
			continue
		}
		bad(e.field, "%s set but empty; set it, or remove the key", e.varList())
	}
	if c.Jobs.Concurrency < 0 {
		bad("jobs.concurrency", "must be at least 1")
	}
	if c.PublicURL != "" {
		validHTTPURL("public_url", c.PublicURL, bad)
	}
	if c.Webhook.MaxBodyBytes < 0 {
		bad("webhook.max_body_bytes", "must be positive")
	}
	if c.Docker.KeepImages < 0 {
		bad("docker.keep_images", "must be at least 1")
	}
	if *c.Registry.Retries < 0 {
		bad("registry.retries", "must not be negative")
	}
	if (c.Registry.Username == "") != (c.Registry.Password == "") {
		bad("registry", "username and password go together")
	}
	if c.Registry.Host != "" {
		if _, err := name.NewRegistry(c.Registry.Host); err != nil || strings.Contains(c.Registry.Host, "/") {
			bad("registry.host", "%q is not a registry host[:port]", c.Registry.Host)
		}
	}
	if c.Prune.Schedule != "" {
		if _, err := cron.ParseStandard(c.Prune.Schedule); err != nil {
			bad("prune.schedule", "%q is not a cron schedule (5 fields or @daily): %v", c.Prune.Schedule, err)
		}
	}
	if c.Prune.Concurrency < 0 {
		bad("prune.concurrency", "must be at least 1")
	}
	validateRetention("prune.retention", c.Prune.Retention, bad)
	tokenNames := map[string]bool{}
	tokenValues := map[string]int{}
	for i, t := range c.Tokens {
		f := fmt.Sprintf("tokens[%d]", i)
		if t.Name == "" {
			bad(f+".name", "must not be empty")
		} else if tokenNames[t.Name] {
			bad(f+".name", "%q is used twice", t.Name)
		}
		tokenNames[t.Name] = true
		if len(t.Token) < minSecretLength {
			bad(f+".token", "must be at least %d characters", minSecretLength)
		}
		if j, dup := tokenValues[t.Token]; dup && t.Token != "" {
			// Looked up by value, one would take the other's scopes.
			bad(f+".token", "%q has the same value as %q (tokens[%d], line %d); give each token its own", t.Name, c.Tokens[j].Name, j, found.lineOf(fmt.Sprintf("tokens[%d].token", j)))
		} else {
			tokenValues[t.Token] = i
		}
		if len(t.Scopes) == 0 {
			bad(f+".scopes", "must not be empty")
		}
		for j, s := range t.Scopes {
			if !knownScopes[s] {
				bad(fmt.Sprintf("%s.scopes[%d]", f, j), "unknown scope %q (want read, deploy, rollback, scale or admin)", s)
			}
		}
	}
	projectNames := map[string]bool{}
	type serviceOwner struct {
		project int
		field   string
	}
	owner := map[string]serviceOwner{}
	for i := range c.Projects {
		p := &c.Projects[i]
		f := fmt.Sprintf("projects[%d]", i)
		switch {
		case !projectName.MatchString(p.Name):
			bad(f+".name", "%q must be lower-case letters, digits, '.', '_' or '-'", p.Name)
		case projectNames[p.Name]:
			bad(f+".name", "%q is used twice", p.Name)
		}
		projectNames[p.Name] = true
		if p.Repo == "" {
			bad(f+".repo", "must not be empty")
		}
		if p.AllowUnsigned && p.Secret != "" {
			bad(f+".allow_unsigned", "must not be set on a project with a secret: deliveries to it are always verified")
		}
		if p.Secret != "" && len(p.Secret) < minSecretLength {
			found.warn(f+".secret", "%s", shortSecret)
		}
		for j, w := range p.Notify.Webhooks {
			if w.Secret != "" && len(w.Secret) < minSecretLength {
				found.warn(fmt.Sprintf("%s.notify.webhooks[%d].secret", f, j), "%s", shortSecret)
			}
		}
		p.Notify.validate(f+".notify", bad)
		if p.Status != nil {
			p.Status.validate(f+".status", bad)
		}
		p.Git.validate(f+".git", p.Repo, bad)
		if p.Build.Parallelism < 1 {
			bad(f+".build.parallelism", "must be at least 1")
		}
		if p.Build.Timeout.Duration > c.Jobs.Timeout.Duration {
			bad(f+".build.timeout", "%s is longer than jobs.timeout (%s), which bounds the whole job", p.Build.Timeout.Duration, c.Jobs.Timeout.Duration)
		}
		if len(p.Images) == 0 {
			bad(f+".images", "must not be empty")
		}
		validateRetention(f+".retention", p.Retention, bad)
		if len(p.Images) > 0 && c.Registry.Host == "" {
			bad("registry.host", "must be set: projects[%d] pushes images", i)
		}
		imageNames := map[string]bool{}
		for j, img := range p.Images {
			g := fmt.Sprintf("%s.images[%d]", f, j)
			if _, err := name.NewRepository("example.com/"+img.Name, name.StrictValidation); err != nil || img.Name == "" {
				bad(g+".name", "%q is not a valid repository name", img.Name)
			} else if imageNames[img.Name] {
				bad(g+".name", "%q is used twice", img.Name)
			}
			imageNames[img.Name] = true
			if !filepath.IsLocal(img.Context) {
				bad(g+".context", "%q must be a relative path inside the repository", img.Context)
			}
			if !filepath.IsLocal(img.Dockerfile) {
				bad(g+".dockerfile", "%q must be a relative path inside the context", img.Dockerfile)
			}
			for k, v := range img.BuildArgs {
				for _, m := range placeholder.FindAllStringSubmatch(v, -1) {
					if !slices.Contains(BuildArgPlaceholders, m[1]) {
						bad(g+".build_args."+k, "unknown placeholder %s (known: %s)", m[0], strings.Join(BuildArgPlaceholders, ", "))
					}
				}
			}
			for k := range img.Labels {
				if strings.HasPrefix(k, "io.swarmhook.") || strings.HasPrefix(k, "org.opencontainers.image.") {
					bad(g+".labels."+k, "is set by swarmhook itself")
				}
			}
			validateRetention(g+".retention", img.Retention, bad)
		}
		for j, d := range p.Deploy {
			g := fmt.Sprintf("%s.deploy[%d]", f, j)
			if d.Branch.re == nil {
				bad(g+".branch", "must not be empty")
			}
			if len(d.Services) == 0 {
				bad(g+".services", "must not be empty")
			}
			seen := map[string]bool{}
			for k, s := range d.Services {
				h := fmt.Sprintf("%s.services[%d]", g, k)
				if s.Name == "" {
					bad(h+".name", "must not be empty")
				} else if seen[s.Name] {
					bad(h+".name", "%q is listed twice", s.Name)
				}
				seen[s.Name] = true
				if o, taken := owner[s.Name]; taken && o.project != i {
					// Two projects' jobs could update it at once, and
					// rollback and scale would act for the first alone.
					bad(h+".name", "service %q is already deployed by project %q (%s, line %d); a service belongs to one project", s.Name, c.Projects[o.project].Name, o.field, found.lineOf(o.field))
				} else if !taken {
					owner[s.Name] = serviceOwner{project: i, field: h}
				}
				if s.Image != "" && !imageNames[s.Image] {
					bad(h+".image", "%q is not one of the project's images", s.Image)
				}
			}
			d.Update.validate(g+".update", false, bad)
			d.Rollback.validate(g+".rollback", true, bad)
			for k, s := range d.Services {
				if s.Update != nil {
					s.Update.validate(fmt.Sprintf("%s.services[%d].update", g, k), true, bad)
				}
			}
			switch d.OnFailure {
			case "stop", "rollback_all":
			default:
				bad(g+".on_failure", "%q must be stop or rollback_all", d.OnFailure)
			}
			switch d.Pipeline {
			case PipelineSequential, PipelineOverlap:
			default:
				bad(g+".pipeline", "%q must be %s or %s", d.Pipeline, PipelineSequential, PipelineOverlap)
			}
		}
	}
}
