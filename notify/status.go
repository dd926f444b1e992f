package notify

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
)

// statusStates maps a job event to each host's commit status state. The
// hosts' vocabularies differ: GitHub knows pending, success, failure and
// error; GitLab pending, running, success, failed and canceled; Gitea and
// Forgejo pending, success, error, failure and warning. Superseded jobs
// never started, so no status was ever set for them and none is sent.
var statusStates = map[config.Provider]map[config.Event]string{
	config.ProviderGitHub: {
		config.EventStarted:     "pending",
		config.EventSuccess:     "success",
		config.EventFailure:     "failure",
		config.EventInterrupted: "error",
	},
	config.ProviderGitLab: {
		config.EventStarted:     "running",
		config.EventSuccess:     "success",
		config.EventFailure:     "failed",
		config.EventInterrupted: "canceled",
	},
	config.ProviderGitea: {
		config.EventStarted:     "pending",
		config.EventSuccess:     "success",
		config.EventFailure:     "failure",
		config.EventInterrupted: "error",
	},
}

// statusState returns the state provider names event by, or "" when no
// status is sent for it.
func statusState(provider config.Provider, event config.Event) string {
	if provider == config.ProviderForgejo {
		provider = config.ProviderGitea
	}
	return statusStates[provider][event]
}

// call is one HTTP request to send, kept as parts so that every attempt
// builds a fresh request.
type call struct {
	method string
	url    string
	header http.Header
	body   []byte
}

// statusCall builds the host's "create a commit status" request, as each
// documents it:
//
//   - GitHub: POST {api}/repos/{owner}/{repo}/statuses/{sha}, Bearer token,
//     JSON {state, target_url, description, context}.
//   - GitLab: POST {api}/api/v4/projects/{id}/statuses/{sha}, PRIVATE-TOKEN,
//     JSON {state, ref, name, target_url, description}; a path id is
//     URL-encoded (group%2Fname).
//   - Gitea and Forgejo: POST {api}/api/v1/repos/{owner}/{repo}/statuses/{sha},
//     "token" authorization, JSON {state, target_url, description, context}.
func statusCall(s *config.CommitStatus, j *job.Job, state, link string) (call, error) {
	desc := statusDescription(j, eventOf(j))
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", userAgent)
	var path string
	var body any
	switch s.Provider {
	case config.ProviderGitHub:
		owner, repo, _ := strings.Cut(s.Repo, "/")
		path = "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(repo) + "/statuses/" + url.PathEscape(j.Commit)
		h.Set("Authorization", "Bearer "+s.Token)
		h.Set("Accept", "application/vnd.github+json")
		h.Set("X-GitHub-Api-Version", "2022-11-28")
		body = hubStatus{State: state, TargetURL: link, Description: desc, Context: s.Context}
	case config.ProviderGitLab:
		path = "/api/v4/projects/" + url.PathEscape(s.Repo) + "/statuses/" + url.PathEscape(j.Commit)
		h.Set("PRIVATE-TOKEN", s.Token)
		body = labStatus{State: state, Ref: j.Branch, Name: s.Context, TargetURL: link, Description: desc}
	case config.ProviderGitea, config.ProviderForgejo:
		owner, repo, _ := strings.Cut(s.Repo, "/")
		path = "/api/v1/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(repo) + "/statuses/" + url.PathEscape(j.Commit)
		h.Set("Authorization", "token "+s.Token)
		h.Set("Accept", "application/json")
		body = hubStatus{State: state, TargetURL: link, Description: desc, Context: s.Context}
	default:
		return call{}, fmt.Errorf("commit status: unknown provider %q", s.Provider)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return call{}, fmt.Errorf("encode commit status: %w", err)
	}
	return call{method: http.MethodPost, url: s.APIURL + path, header: h, body: b}, nil
}

// hubStatus is the status body of GitHub, Gitea and Forgejo.
type hubStatus struct {
	State       string `json:"state"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description"`
	Context     string `json:"context"`
}

// labStatus is GitLab's status body; name is its word for context.
type labStatus struct {
	State       string `json:"state"`
	Ref         string `json:"ref,omitempty"`
	Name        string `json:"name"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description"`
}
