package webhook

import (
	"net/http"
)

// giteaFlavor names the headers of one of the Gitea family of hosts,
// which share Gogs's payload format and sign it the same way: the hex
// HMAC-SHA256 of the body, without a prefix.
type giteaFlavor struct {
	provider, event, signature, delivery string
}

// The Gitea family. Forgejo also sends Gitea's headers, and Gitea
// GitHub's, so Parse looks for Forgejo's first and GitHub's last.
var (
	forgejo = giteaFlavor{"forgejo", "X-Forgejo-Event", "X-Forgejo-Signature", "X-Forgejo-Delivery"}
	gitea   = giteaFlavor{"gitea", "X-Gitea-Event", "X-Gitea-Signature", "X-Gitea-Delivery"}
	gogs    = giteaFlavor{"gogs", "X-Gogs-Event", "X-Gogs-Signature", "X-Gogs-Delivery"}
)

// giteaPush holds the fields of the Gitea family's push payload that
// swarmhook uses.
type giteaPush struct {
	Ref        string `json:"ref"`
	Before     string `json:"before"`
	After      string `json:"after"`
	Repository struct {
		CloneURL string `json:"clone_url"`
	} `json:"repository"`
	Pusher struct {
		Login    string `json:"login"`
		Username string `json:"username"`
	} `json:"pusher"`
	HeadCommit *commitInfo  `json:"head_commit"`
	Commits    []commitInfo `json:"commits"`
}

// parseGitea reads Gitea, Forgejo and Gogs deliveries.
func parseGitea(f giteaFlavor, h http.Header, body []byte, pol Policy) (Delivery, error) {
	if err := pol.verify(func() error { return hexHMAC(body, pol.Secret, "", h.Get(f.signature)) }); err != nil {
		return Delivery{}, err
	}
	d := Delivery{Provider: f.provider, ID: h.Get(f.delivery), Event: h.Get(f.event)}
	if d.Kind = kindOf(d.Event, "ping", "push"); d.Kind != KindPush {
		return d, nil
	}
	var p giteaPush
	if err := decodeJSON(f.provider+" push body", body, &p, false); err != nil {
		return Delivery{}, err
	}
	head := commitInfo{ID: p.After, Message: messageOf(p.Commits, p.After)}
	if p.HeadCommit != nil {
		head = *p.HeadCommit
	}
	target := ""
	if isTagRef(p.Ref) {
		target = head.ID
	}
	push, err := normalize(p.Ref, p.Before, p.After, target, false)
	if err != nil {
		return Delivery{}, err
	}
	push.CloneURL, push.HeadMessage = p.Repository.CloneURL, head.Message
	push.Pusher = p.Pusher.Login
	if push.Pusher == "" {
		push.Pusher = p.Pusher.Username
	}
	d.Kind = KindPush
	d.Pushes = []Push{push}
	return d, nil
}
