package webhook

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
)

// githubPush holds the fields of GitHub's push payload that swarmhook uses.
type githubPush struct {
	Ref        string `json:"ref"`
	Before     string `json:"before"`
	After      string `json:"after"`
	Deleted    bool   `json:"deleted"`
	Repository struct {
		CloneURL string `json:"clone_url"`
	} `json:"repository"`
	Pusher struct {
		Name string `json:"name"`
	} `json:"pusher"`
	HeadCommit *commitInfo `json:"head_commit"`
}

// parseGitHub reads GitHub and GitHub Enterprise deliveries: X-GitHub-Event,
// X-GitHub-Delivery, X-Hub-Signature-256, and a JSON or form-encoded body.
func parseGitHub(h http.Header, body []byte, pol Policy) (Delivery, error) {
	if err := pol.verify(func() error { return hexHMAC(body, pol.Secret, "sha256=", h.Get("X-Hub-Signature-256")) }); err != nil {
		return Delivery{}, err
	}
	d := Delivery{Provider: "github", ID: h.Get("X-GitHub-Delivery"), Event: h.Get("X-GitHub-Event")}
	if d.Kind = kindOf(d.Event, "ping", "push"); d.Kind != KindPush {
		return d, nil
	}
	payload, err := githubPayload(h.Get("Content-Type"), body)
	if err != nil {
		return Delivery{}, err
	}
	var p githubPush
	if err := decodeJSON("github push body", payload, &p, false); err != nil {
		return Delivery{}, err
	}
	// For a tag, head_commit is the tagged commit even when after is an
	// annotated tag object.
	var head commitInfo
	if p.HeadCommit != nil {
		head = *p.HeadCommit
	}
	target := ""
	if isTagRef(p.Ref) {
		target = head.ID
	}
	push, err := normalize(p.Ref, p.Before, p.After, target, p.Deleted)
	if err != nil {
		return Delivery{}, err
	}
	push.CloneURL, push.Pusher, push.HeadMessage = p.Repository.CloneURL, p.Pusher.Name, head.Message
	d.Kind = KindPush
	d.Pushes = []Push{push}
	return d, nil
}

// githubPayload returns the JSON of a delivery: the body itself, or its
// payload field when the hook sends application/x-www-form-urlencoded.
func githubPayload(contentType string, body []byte) ([]byte, error) {
	media, _, err := mime.ParseMediaType(contentType)
	if err != nil || media != "application/x-www-form-urlencoded" {
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("%w: github form body: %v", ErrMalformed, err)
	}
	payload := form.Get("payload")
	if payload == "" {
		return nil, fmt.Errorf("%w: github form body has no payload field", ErrMalformed)
	}
	return []byte(payload), nil
}
