package config

import (
	"fmt"
	"net/url"
	"slices"
)

// Chat configures chat-ops: commands typed in a chat that start jobs.
type Chat struct {
	// Slack takes Slack slash commands and buttons at POST /chat/slack;
	// nil serves no such route.
	Slack *Slack `yaml:"slack"`
}

// Slack configures Slack slash commands (/deploy rollback shop_api TAG).
type Slack struct {
	// SigningSecret verifies every request (the app's "Signing Secret").
	SigningSecret string `yaml:"signing_secret" secret:"true"`
	// Users are the Slack users who may run commands, and with which
	// scopes; anyone else is refused.
	Users []SlackUser `yaml:"users"`
	// ResponseURLs are the URL prefixes swarmhook will post results to.
	// A request's response_url comes from its sender: any other URL is
	// refused, so a forged request cannot make swarmhook call inside the
	// network (SSRF). Default: DefaultSlackResponseURL only.
	ResponseURLs []string `yaml:"response_urls"`
}

// SlackUser maps one Slack user to what they may do.
type SlackUser struct {
	// ID is Slack's user ID (U0123ABCD), not the display name, which
	// anyone may change.
	ID string `yaml:"id"`
	// Team is the workspace ID (T0123ABCD); empty matches any workspace
	// the app is installed in.
	Team string `yaml:"team"`
	// Name is recorded on the jobs the user starts; "slack:<id>" when
	// empty.
	Name string `yaml:"name"`
	// Scopes are the API scopes the user has: read, deploy, rollback,
	// scale, approve, override, admin.
	Scopes []Scope `yaml:"scopes"`
}

// DefaultSlackResponseURL is where Slack's response URLs live.
const DefaultSlackResponseURL = "https://hooks.slack.com/"

// Who is the name recorded on the user's jobs.
func (u SlackUser) Who() string {
	if u.Name != "" {
		return u.Name
	}
	return "slack:" + u.ID
}

// Has reports whether the user may do what scope allows.
func (u SlackUser) Has(scope Scope) bool {
	return slices.Contains(u.Scopes, scope) || slices.Contains(u.Scopes, ScopeAdmin)
}

func (s *Slack) applyDefaults() {
	if len(s.ResponseURLs) == 0 {
		s.ResponseURLs = []string{DefaultSlackResponseURL}
	}
}

func (s *Slack) validate(f *findings, field string) {
	if s.SigningSecret == "" {
		f.bad(field+".signing_secret", "must not be empty: without it anyone could run commands")
	}
	if len(s.Users) == 0 {
		f.bad(field+".users", "must not be empty: nobody could run a command")
	}
	seen := map[[2]string]bool{}
	for i, u := range s.Users {
		uf := fmt.Sprintf("%s.users[%d]", field, i)
		if u.ID == "" {
			f.bad(uf+".id", "must not be empty")
		}
		if seen[[2]string{u.Team, u.ID}] {
			f.bad(uf+".id", "%q is listed twice", u.ID)
		}
		seen[[2]string{u.Team, u.ID}] = true
		if len(u.Scopes) == 0 {
			f.bad(uf+".scopes", "must not be empty")
		}
		for j, sc := range u.Scopes {
			if !slices.Contains(scopes, sc) {
				f.bad(fmt.Sprintf("%s.scopes[%d]", uf, j), "unknown scope %q (want %s)", sc, oneOf(scopes))
			}
		}
	}
	for i, raw := range s.ResponseURLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			f.bad(fmt.Sprintf("%s.response_urls[%d]", field, i), "must be an http:// or https:// URL prefix such as %s", DefaultSlackResponseURL)
		}
	}
}
