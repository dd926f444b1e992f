package config

import (
	"slices"
	"strings"
	"time"

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
	DefaultFailureAction  = FailureActionRollback
	DefaultOrder          = OrderStopFirst // start-first would clash with host-mode ports
	DefaultMonitor        = 5 * time.Second
	DefaultOnFailure      = OnFailureStop
	DefaultBranchPattern  = "**"
	DefaultPipeline       = PipelineSequential // a failed build never leaves a half-deployed stack
	DefaultKeepImages     = 3                  // per image on the builder: the running one, and two to roll back to without a pull
	DefaultBuildTimeout   = 20 * time.Minute   // one project's builds; below the job timeout so a stuck build leaves time to report
	DefaultRetries        = 3                  // registry attempts after the first: rides out a registry restart
	DefaultRetryBackoff   = time.Second        // first pause between registry attempts; doubles each time
	DefaultGitUsername    = "x-access-token"   // what GitHub expects with a token; GitLab takes any non-empty name
	DefaultPruneWorkers   = 8                  // registry requests at once during a prune: fast, yet gentle on a small registry
	DefaultBuildWorkers   = 1                  // a project's images built at once
	DefaultApproveTimeout = 2 * time.Hour      // a deploy held for approval: long enough for a reviewer, short enough that a stale build is not approved by accident
)

// Default API addresses of the hosted services; self-hosted Gitea and
// Forgejo have none, so api_url is required for them.
const (
	DefaultGitHubAPI     = "https://api.github.com"
	DefaultGitLabAPI     = "https://gitlab.com"
	DefaultStatusContext = "swarmhook"
)

// DefaultNotifyOn are the events notified when on: is left out: every
// end that someone should hear of. Superseded jobs are left out because
// the job that replaced them reports for both. A deploy that waits (for
// an approval, above all) is sent: someone has to act on it.
var DefaultNotifyOn = []Event{EventSuccess, EventFailure, EventInterrupted, EventWaiting}

// applyDefaults fills in what the file left out, each section through its
// own method. It runs after decoding and before validation, so validation
// sees the values swarmhook will use.
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
	c.Registry.applyDefaults()
	c.Prune.applyDefaults()
	c.Dashboard.applyDefaults()
	if c.Chat.Slack != nil {
		c.Chat.Slack.applyDefaults()
	}
	for i := range c.Projects {
		c.Projects[i].applyDefaults(c.Jobs.Timeout.Duration)
	}
}

func (r *Registry) applyDefaults() {
	if r.Retries == nil {
		n := DefaultRetries
		r.Retries = &n
	}
	if r.RetryBackoff.Duration == 0 {
		r.RetryBackoff.Duration = DefaultRetryBackoff
	}
}

func (p *Prune) applyDefaults() {
	if p.Concurrency == 0 {
		p.Concurrency = DefaultPruneWorkers
	}
	defaultRetention(p.Retention)
}

func defaultRetention(rs []Retention) {
	for i := range rs {
		if rs[i].KeepLast == 0 {
			rs[i].KeepLast = tagpolicy.DefaultKeepLast
		}
	}
}

// applyDefaults fills in a project; jobTimeout bounds its build timeout.
func (p *Project) applyDefaults(jobTimeout time.Duration) {
	defaultRetention(p.Retention)
	p.Notify.applyDefaults()
	if p.Status != nil {
		p.Status.applyDefaults()
	}
	if p.Build.Parallelism == 0 {
		p.Build.Parallelism = DefaultBuildWorkers
	}
	if p.Build.Timeout.Duration == 0 {
		p.Build.Timeout.Duration = min(DefaultBuildTimeout, jobTimeout)
	}
	if p.Git.Token != "" && p.Git.Username == "" {
		p.Git.Username = DefaultGitUsername
	}
	if len(p.Branches) == 0 {
		p.Branches = []Glob{MustGlob(DefaultBranchPattern)}
	}
	for i := range p.Images {
		p.Images[i].applyDefaults()
	}
	for i := range p.Deploy {
		p.Deploy[i].applyDefaults()
	}
}

func (img *Image) applyDefaults() {
	defaultRetention(img.Retention)
	if img.Context == "" {
		img.Context = DefaultContext
	}
	if img.Dockerfile == "" {
		img.Dockerfile = DefaultDockerfile
	}
}

func (d *Deploy) applyDefaults() {
	if d.Timeout.Duration == 0 {
		d.Timeout.Duration = DefaultServiceTimeout
	}
	if d.OnFailure == "" {
		d.OnFailure = DefaultOnFailure
	}
	if d.Pipeline == "" {
		d.Pipeline = DefaultPipeline
	}
	if a := d.Approve; a != nil {
		if a.Scope == "" {
			a.Scope = ScopeApprove
		}
		if a.Timeout.Duration == 0 {
			a.Timeout.Duration = DefaultApproveTimeout
		}
	}
	d.Update.applyDefaults()
}

// applyDefaults fills in a deploy target's update section. Rollback and
// per-service sections are left partial: see Deploy.UpdateFor.
func (u *Update) applyDefaults() {
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

func (n *Notify) applyDefaults() {
	if n.On == nil {
		n.On = slices.Clone(DefaultNotifyOn)
	}
}

func (s *CommitStatus) applyDefaults() {
	if s.APIURL == "" {
		switch s.Provider {
		case ProviderGitHub:
			s.APIURL = DefaultGitHubAPI
		case ProviderGitLab:
			s.APIURL = DefaultGitLabAPI
		}
	}
	s.APIURL = strings.TrimRight(s.APIURL, "/")
	if s.Context == "" {
		s.Context = DefaultStatusContext
	}
}
