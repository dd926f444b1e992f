package webhook

import (
	"fmt"
	"net/http"
	"strings"
)

// gitlabPush holds the fields of GitLab's push and tag push payloads (and
// of system hooks' push events, which share them) that swarmhook uses.
type gitlabPush struct {
	EventName    string `json:"event_name"`
	Ref          string `json:"ref"`
	Before       string `json:"before"`
	After        string `json:"after"`
	CheckoutSHA  string `json:"checkout_sha"`
	UserName     string `json:"user_name"`
	UserUsername string `json:"user_username"`
	Project      struct {
		GitHTTPURL string `json:"git_http_url"`
	} `json:"project"`
	Commits []commitInfo `json:"commits"`
}

// parseGitLab reads GitLab deliveries: X-Gitlab-Event (Push Hook, Tag
// Push Hook, System Hook), checked by X-Gitlab-Token, or by the Standard
// Webhooks webhook-signature header when the project's secret is a
// signing token (whsec_...).
//
// A signed delivery is known by its webhook-id, which the signature
// covers; its other id headers are not signed, so anyone who saw one
// delivery could resend it under another id, or under the id of a push
// still to come and have that push dropped as a redelivery.
func parseGitLab(h http.Header, body []byte, pol Policy) (Delivery, error) {
	signed := strings.HasPrefix(pol.Secret, signingTokenPrefix)
	if err := pol.verify(func() error {
		if signed {
			return standardWebhook(h, body, pol.Secret, pol.Now)
		}
		if !validToken(pol.Secret, h.Get("X-Gitlab-Token")) {
			return fmt.Errorf("%w: X-Gitlab-Token missing or wrong", ErrSignature)
		}
		return nil
	}); err != nil {
		return Delivery{}, err
	}
	id := gitlabDeliveryID(h)
	if signed {
		id = h.Get("webhook-id")
	}
	d := Delivery{Provider: "gitlab", ID: id, Event: h.Get("X-Gitlab-Event")}
	// GitLab has no ping: its "Test" button sends a real push.
	if d.Kind = kindOf(d.Event, "", "Push Hook", "Tag Push Hook", "System Hook"); d.Kind != KindPush {
		return d, nil
	}
	var p gitlabPush
	if err := decodeJSON("gitlab "+strings.ToLower(d.Event)+" body", body, &p, false); err != nil {
		return Delivery{}, err
	}
	if d.Event == "System Hook" && p.EventName != "push" && p.EventName != "tag_push" {
		d.Kind, d.Event = KindIgnored, "System Hook "+p.EventName
		return d, nil
	}
	// checkout_sha is the commit the ref now points at, also for an
	// annotated tag, whose after is the tag object.
	push, err := normalize(p.Ref, p.Before, p.After, p.CheckoutSHA, false)
	if err != nil {
		return Delivery{}, err
	}
	push.CloneURL = p.Project.GitHTTPURL
	push.Pusher = p.UserUsername
	if push.Pusher == "" {
		push.Pusher = p.UserName
	}
	push.HeadMessage = messageOf(p.Commits, push.Commit)
	d.Kind = KindPush
	d.Pushes = []Push{push}
	return d, nil
}

// gitlabDeliveryID is the id of a delivery checked by X-Gitlab-Token,
// which signs nothing: Idempotency-Key, which GitLab keeps across retries
// of one delivery, before X-Gitlab-Event-UUID, which older GitLab
// versions send alone. Signed deliveries use their signed webhook-id.
func gitlabDeliveryID(h http.Header) string {
	for _, k := range []string{"Idempotency-Key", "webhook-id", "X-Gitlab-Event-UUID"} {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return ""
}
