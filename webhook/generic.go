package webhook

import (
	"fmt"
	"net/http"
)

// genericPush is swarmhook's own trigger format, for scripts and other
// CI systems; docs/webhooks.md describes it. Unknown fields are refused
// so a typo is an error, not a silently ignored field.
type genericPush struct {
	Ref      string `json:"ref"`
	Branch   string `json:"branch"`
	Tag      string `json:"tag"`
	Before   string `json:"before"`
	Commit   string `json:"commit"`
	Deleted  bool   `json:"deleted"`
	CloneURL string `json:"clone_url"`
	Message  string `json:"message"`
	Pusher   string `json:"pusher"`
}

// parseGeneric reads the generic format: X-Signature-256 ("sha256=" hex
// HMAC-SHA256 of the body), an optional X-Delivery-ID, an optional
// X-Event (push, the default, or ping), and a JSON body naming exactly
// one of ref, branch or tag, and the commit.
func parseGeneric(h http.Header, body []byte, pol Policy) (Delivery, error) {
	if err := pol.verify(func() error { return hexHMAC(body, pol.Secret, "sha256=", h.Get("X-Signature-256")) }); err != nil {
		return Delivery{}, err
	}
	d := Delivery{Provider: "generic", ID: h.Get("X-Delivery-ID"), Event: h.Get("X-Event")}
	if d.Event == "" {
		d.Event = "push"
	}
	if d.Kind = kindOf(d.Event, "ping", "push"); d.Kind != KindPush {
		return d, nil
	}
	var p genericPush
	if err := decodeJSON("generic push body", body, &p, true); err != nil {
		return Delivery{}, err
	}
	ref, err := genericRef(p)
	if err != nil {
		return Delivery{}, err
	}
	push, err := normalize(ref, p.Before, p.Commit, "", p.Deleted)
	if err != nil {
		return Delivery{}, err
	}
	push.CloneURL, push.Pusher, push.HeadMessage = p.CloneURL, p.Pusher, p.Message
	d.Kind = KindPush
	d.Pushes = []Push{push}
	return d, nil
}

// genericRef returns the full ref from whichever of ref, branch or tag
// the body names; exactly one must be set.
func genericRef(p genericPush) (string, error) {
	set := 0
	ref := p.Ref
	for _, v := range []string{p.Ref, p.Branch, p.Tag} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return "", fmt.Errorf("%w: generic push body must name exactly one of ref, branch or tag", ErrMalformed)
	}
	switch {
	case p.Branch != "":
		ref = "refs/heads/" + p.Branch
	case p.Tag != "":
		ref = "refs/tags/" + p.Tag
	}
	return ref, nil
}
