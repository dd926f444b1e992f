package config

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

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
	// Dashboard configures the web UI at /.
	Dashboard Dashboard `yaml:"dashboard"`
	// Projects are the repositories swarmhook builds and deploys.
	Projects []Project `yaml:"projects"`
	// Chat takes chat-ops commands (Slack slash commands).
	Chat Chat `yaml:"chat"`

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
	// Builder is the engine's builder images are built with: buildkit or
	// classic. Empty means BuildKit when the engine has it (API 1.39 and
	// later, on Linux), else classic.
	Builder Builder `yaml:"builder"`
	// Builders are the engines images are built on (see BuildEngine);
	// none means Host builds them. Host always runs the Swarm updates,
	// so listing only other engines keeps builds off the manager.
	Builders []BuildEngine `yaml:"builders"`
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
	// Scopes are what it may do: read, deploy, rollback, scale,
	// approve, override, admin.
	Scopes []Scope `yaml:"scopes"`
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
	// Branches are globs of branch names, written as a Glob is but read
	// over the tag's branch component ('/' matches '-'); empty matches
	// every branch.
	Branches []string `yaml:"branches"`
	// KeepLast is how many newest tags of each branch stay; default 10.
	KeepLast int `yaml:"keep_last"`
	// KeepWithin keeps every tag younger than this as well.
	KeepWithin Duration `yaml:"keep_within"`
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
	// Branches are globs (see Glob) of branches that build; ** matches
	// across '/'.
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
	// On picks the build engines the project's jobs may run on: those
	// of docker.builders carrying every label given. Empty means any.
	On map[string]string `yaml:"on"`
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
	// Secrets are build secrets by id, for RUN --mount=type=secret,id=ID
	// (BuildKit only); write their values as ${VAR}. They never reach the
	// image or a log.
	Secrets map[string]string `yaml:"secrets" secret:"true"`
	// Retention replaces the project's retention for this image.
	Retention []Retention `yaml:"retention"`
}

// Deploy is one deploy target: services updated, in order, for pushes to
// matching branches.
type Deploy struct {
	// Branch selects the pushes this target deploys.
	Branch Glob `yaml:"branch"`
	// Services are updated one after another, in this order; the members
	// of a group (a list inside the list: [[api, worker], web]) roll out
	// at the same time, and the next item starts once all of them ended.
	Services ServiceList `yaml:"services"`
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
	OnFailure OnFailure `yaml:"on_failure"`
	// Pipeline is sequential (every image is built, pushed and tagged
	// before any service changes) or overlap (a service starts rolling as
	// soon as its own image is ready, so a later image's failed build can
	// leave earlier services on the new version).
	Pipeline Pipeline `yaml:"pipeline"`
	// PrePull, when true, pulls each service's new image on every node
	// the service may run on before its rolling update starts, so no
	// task's stop-to-start gap includes the pull (a one-shot global job
	// whose tasks never start the image's code).
	PrePull bool `yaml:"pre_pull"`
	// Stack, when set, deploys the compose file of the pushed commit as
	// a Swarm stack (see the stack package): Services then only orders
	// the stack's services, and services the file does not list follow
	// in file order.
	Stack *Stack `yaml:"stack"`
	// Prune removes the stack's services that the compose file no longer
	// lists; without it they are left running and the plan says so.
	Prune bool `yaml:"prune"`
	// Environment names the target (staging, production) for promotion:
	// POST /api/projects/{p}/promote copies what one environment's
	// services run to another's. Unique within a project.
	Environment string `yaml:"environment"`
	// PromoteFrom, when set, makes the target take deploys only by
	// promotion from that environment: a push matching Branch builds and
	// pushes but deploys nothing here.
	PromoteFrom string `yaml:"promote_from"`
	// Approve, when set, holds every deploy to the target, after its
	// images are pushed, until a token with the scope approves it.
	Approve *Approve `yaml:"approve"`
	// Windows, when set, are the only times a deploy to the target may
	// start; one that is ready outside them waits for the next.
	Windows []Window `yaml:"windows"`
}

// Stack is a compose file in the repository deployed as a Swarm stack.
type Stack struct {
	// Name is the stack's namespace (lower-case letters, digits and '-',
	// no '_'): services, networks, configs and
	// secrets are named <name>_<key> and labelled
	// com.docker.stack.namespace=<name>, as docker stack deploy does.
	Name string `yaml:"name"`
	// File is the compose file's path in the repository.
	File string `yaml:"file"`
	// EnvFile is a file of KEY=value lines on swarmhook's host whose
	// values ${KEY} in the compose file takes; Env adds to and overrides
	// it. swarmhook's own environment is never read.
	EnvFile string `yaml:"env_file"`
	// Env are more values for interpolation.
	Env map[string]string `yaml:"env" secret:"true"`
}

// ServiceList is a deploy target's services in order. In YAML each item is
// a service, or a group: a list of services that roll out at the same
// time. Decoded, the groups are flattened in order and each member carries
// its group's number in Group.
type ServiceList []Service

// UnmarshalYAML accepts [api, [worker, {name: web, image: shop/web}]].
func (l *ServiceList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("services: expected a list, got %s", n.ShortTag())
	}
	var out ServiceList
	for i, item := range n.Content {
		if item.Kind == yaml.AliasNode && item.Alias != nil {
			item = item.Alias
		}
		if item.Kind != yaml.SequenceNode {
			var s Service
			if err := item.Decode(&s); err != nil {
				return err
			}
			if i != len(out) { // after a group: its flat index is not the YAML's
				s.at = fmt.Sprintf("[%d]", i)
			}
			out = append(out, s)
			continue
		}
		for k, m := range item.Content {
			var s Service
			if err := m.Decode(&s); err != nil {
				return err
			}
			s.Group, s.at = i+1, fmt.Sprintf("[%d][%d]", i, k)
			out = append(out, s)
		}
	}
	*l = out
	return nil
}

// Groups splits the list into what rolls out one after another: runs of
// services with the same non-zero Group, and each service whose Group is
// 0 alone.
func (l ServiceList) Groups() [][]Service {
	var gs [][]Service
	for i, s := range l {
		if i > 0 && s.Group != 0 && s.Group == l[i-1].Group {
			gs[len(gs)-1] = append(gs[len(gs)-1], s)
			continue
		}
		gs = append(gs, []Service{s})
	}
	return gs
}

// Approve says who must approve a target's deploys, and for how long a
// deploy waits for it.
type Approve struct {
	// Scope a token needs to approve or reject: approve (the default) or
	// admin.
	Scope Scope `yaml:"scope"`
	// Timeout is how long a deploy waits; unanswered, the job ends
	// expired. Default DefaultApproveTimeout.
	Timeout Duration `yaml:"timeout"`
}

// Window is one recurring span of time a target takes deploys in.
type Window struct {
	// Start is a cron expression for when it opens: 5 fields (minute
	// hour day-of-month month day-of-week), 6 with seconds first, or
	// @daily and the like.
	Start string `yaml:"start"`
	// Duration is how long it stays open.
	Duration Duration `yaml:"duration"`
	// TimeZone is the IANA zone Start is read in (Europe/Berlin); empty
	// is UTC.
	TimeZone string `yaml:"timezone"`
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
	// Group, when not 0, is the group the service rolls out with: the
	// services next to it with the same Group update at the same time. In
	// YAML a group is a list inside services.
	Group int `yaml:"-"`

	at string // where in services the YAML put it: "[2]" or "[0][1]"
}

// path is where the service sits in its target's services list, for
// messages: what the YAML said, or its position i in the flat list.
func (s Service) path(i int) string {
	if s.at != "" {
		return s.at
	}
	return fmt.Sprintf("[%d]", i)
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
	FailureAction FailureAction `yaml:"failure_action"`
	// Order is stop-first or start-first.
	Order Order `yaml:"order"`
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

// Notify says where a project's job results are sent.
type Notify struct {
	// Slack are Slack-compatible incoming-webhook URLs (Slack, Mattermost,
	// Rocket.Chat); each gets {"text": ...}. They are secrets.
	Slack []string `yaml:"slack" secret:"true"`
	// Webhooks get the job as JSON.
	Webhooks []NotifyWebhook `yaml:"webhooks"`
	// On lists the events that are sent: started, success, failure,
	// interrupted, superseded. Default success, failure, interrupted.
	On []Event `yaml:"on"`
}

// NotifyWebhook is one generic JSON endpoint.
type NotifyWebhook struct {
	// URL receives a POST of the job as JSON.
	URL string `yaml:"url"`
	// Secret, when set, signs the body: X-Swarmhook-Signature:
	// sha256=<hex HMAC-SHA256 of the body>.
	Secret string `yaml:"secret" secret:"true"`
}

// CommitStatus says how to post commit statuses to the Git host.
type CommitStatus struct {
	// Provider is github, gitlab, gitea or forgejo.
	Provider Provider `yaml:"provider"`
	// APIURL is the host's address: https://api.github.com (or
	// https://HOST/api/v3 for GitHub Enterprise), https://gitlab.com, or
	// the Gitea/Forgejo base URL (required for those).
	APIURL string `yaml:"api_url"`
	// Token is a token allowed to set statuses. It is a secret.
	Token string `yaml:"token" secret:"true"`
	// Repo is owner/name (GitHub, Gitea, Forgejo), or the project's
	// numeric id or full path group/name (GitLab).
	Repo string `yaml:"repo"`
	// Context names the check on the commit; default "swarmhook".
	Context string `yaml:"context"`
}
