package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Events a notification may be sent for: a job started, or ended in one
// of these ways.
const (
	EventStarted     = "started"
	EventSuccess     = "success"
	EventFailure     = "failure"
	EventInterrupted = "interrupted"
	EventSuperseded  = "superseded"
)

// DefaultNotifyOn are the events notified when on: is left out: every
// end that someone should hear of. Superseded jobs are left out because
// the job that replaced them reports for both.
var DefaultNotifyOn = []string{EventSuccess, EventFailure, EventInterrupted}

var knownEvents = []string{EventStarted, EventSuccess, EventFailure, EventInterrupted, EventSuperseded}

// Commit status providers.
const (
	ProviderGitHub  = "github"
	ProviderGitLab  = "gitlab"
	ProviderGitea   = "gitea"
	ProviderForgejo = "forgejo"
)

// Default API addresses of the hosted services; self-hosted Gitea and
// Forgejo have none, so api_url is required for them.
const (
	DefaultGitHubAPI     = "https://api.github.com"
	DefaultGitLabAPI     = "https://gitlab.com"
	DefaultStatusContext = "swarmhook"
)

// Notify says where a project's job results are sent.
type Notify struct {
	// Slack are Slack-compatible incoming-webhook URLs (Slack, Mattermost,
	// Rocket.Chat); each gets {"text": ...}. They are secrets.
	Slack []string `yaml:"slack" secret:"true"`
	// Webhooks get the job as JSON.
	Webhooks []NotifyWebhook `yaml:"webhooks"`
	// On lists the events that are sent: started, success, failure,
	// interrupted, superseded. Default success, failure, interrupted.
	On []string `yaml:"on"`
}

// NotifyWebhook is one generic JSON endpoint.
type NotifyWebhook struct {
	// URL receives a POST of the job as JSON.
	URL string `yaml:"url"`
	// Secret, when set, signs the body: X-Swarmhook-Signature:
	// sha256=<hex HMAC-SHA256 of the body>.
	Secret string `yaml:"secret" secret:"true"`
}

// Wants reports whether event is one the project is notified of.
func (n *Notify) Wants(event string) bool { return slices.Contains(n.On, event) }

// CommitStatus says how to post commit statuses to the Git host.
type CommitStatus struct {
	// Provider is github, gitlab, gitea or forgejo.
	Provider string `yaml:"provider"`
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

func (n *Notify) validate(field string, bad func(field, format string, args ...any)) {
	for i, u := range n.Slack {
		validHTTPURL(fmt.Sprintf("%s.slack[%d]", field, i), u, bad)
	}
	for i, w := range n.Webhooks {
		validHTTPURL(fmt.Sprintf("%s.webhooks[%d].url", field, i), w.URL, bad)
	}
	for i, e := range n.On {
		if !slices.Contains(knownEvents, e) {
			bad(fmt.Sprintf("%s.on[%d]", field, i), "unknown event %q (want %s)", e, strings.Join(knownEvents, ", "))
		}
	}
}

func (s *CommitStatus) validate(field string, bad func(field, format string, args ...any)) {
	switch s.Provider {
	case ProviderGitHub, ProviderGitea, ProviderForgejo:
		if owner, name, ok := strings.Cut(s.Repo, "/"); !ok || owner == "" || name == "" || strings.Contains(name, "/") {
			bad(field+".repo", "%q must be owner/name", s.Repo)
		}
	case ProviderGitLab:
		if s.Repo == "" || strings.HasPrefix(s.Repo, "/") || strings.HasSuffix(s.Repo, "/") {
			bad(field+".repo", "%q must be the project's id or path group/name", s.Repo)
		}
	default:
		bad(field+".provider", "%q must be github, gitlab, gitea or forgejo", s.Provider)
	}
	if s.APIURL == "" {
		bad(field+".api_url", "must be set for %s", s.Provider)
	} else {
		validHTTPURL(field+".api_url", s.APIURL, bad)
	}
	if s.Token == "" {
		bad(field+".token", "must be set")
	}
}

// validHTTPURL checks that raw is an absolute http(s) URL. The URL is not
// repeated in the error: notification URLs carry secrets.
func validHTTPURL(field, raw string, bad func(field, format string, args ...any)) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad(field, "must be an absolute http:// or https:// URL")
	}
}
