package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
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
	HeadCommit *struct {
		Message string `json:"message"`
	} `json:"head_commit"`
}

func parseGitHub(h http.Header, body []byte) (Delivery, error) {
	d := Delivery{Provider: "github", ID: h.Get("X-GitHub-Delivery"), Event: h.Get("X-GitHub-Event")}
	switch d.Event {
	case "ping":
		d.Kind = KindPing
		return d, nil
	case "push":
	default:
		d.Kind = KindIgnored
		return d, nil
	}
	var p githubPush
	if err := json.Unmarshal(body, &p); err != nil {
		return Delivery{}, fmt.Errorf("%w: github push body: %v", ErrMalformed, err)
	}
	push, err := normalize(p.Ref, p.Before, p.After, p.Deleted)
	if err != nil {
		return Delivery{}, err
	}
	push.CloneURL = p.Repository.CloneURL
	push.Pusher = p.Pusher.Name
	if p.HeadCommit != nil {
		push.HeadMessage = p.HeadCommit.Message
	}
	d.Kind = KindPush
	d.Pushes = []Push{push}
	return d, nil
}

// normalize validates the fields every provider has in common.
func normalize(ref, before, after string, deleted bool) (Push, error) {
	name, isTag, err := splitRef(ref)
	if err != nil {
		return Push{}, err
	}
	p := Push{Ref: ref, Name: name, IsTag: isTag, Before: before, After: after, Deleted: deleted || zeroCommit(after)}
	if !p.Deleted {
		if err := ValidCommit(after); err != nil {
			return Push{}, err
		}
	}
	return p, nil
}
