package webhook

import (
	"fmt"
	"net/http"
)

// bitbucketPush holds the fields of Bitbucket Cloud's repo:push payload
// that swarmhook uses. One delivery lists every ref the push changed.
type bitbucketPush struct {
	Push struct {
		Changes []bitbucketChange `json:"changes"`
	} `json:"push"`
	Actor struct {
		DisplayName string `json:"display_name"`
		Nickname    string `json:"nickname"`
	} `json:"actor"`
	Repository struct {
		Links struct {
			HTML struct {
				Href string `json:"href"`
			} `json:"html"`
		} `json:"links"`
	} `json:"repository"`
}

// bitbucketChange is one changed ref: New is nil when it was deleted, Old
// when it was created.
type bitbucketChange struct {
	New    *bitbucketRef `json:"new"`
	Old    *bitbucketRef `json:"old"`
	Closed bool          `json:"closed"`
}

// bitbucketRef is a branch or tag and the commit it points at.
type bitbucketRef struct {
	Type   string `json:"type"`
	Name   string `json:"name"`
	Target struct {
		Hash    string `json:"hash"`
		Message string `json:"message"`
	} `json:"target"`
}

// parseBitbucket reads Bitbucket Cloud deliveries: X-Event-Key,
// X-Request-UUID, X-Hub-Signature ("sha256=" hex HMAC-SHA256 of the
// body). A repo:push gives one Push per changed ref.
func parseBitbucket(h http.Header, body []byte, pol Policy) (Delivery, error) {
	if err := pol.verify(func() error { return hexHMAC(body, pol.Secret, "sha256=", h.Get("X-Hub-Signature")) }); err != nil {
		return Delivery{}, err
	}
	d := Delivery{Provider: "bitbucket", ID: h.Get("X-Request-UUID"), Event: h.Get("X-Event-Key")}
	if d.Kind = kindOf(d.Event, "diagnostics:ping", "repo:push"); d.Kind != KindPush {
		return d, nil
	}
	var p bitbucketPush
	if err := decodeJSON("bitbucket push body", body, &p, false); err != nil {
		return Delivery{}, err
	}
	if len(p.Push.Changes) == 0 {
		return Delivery{}, fmt.Errorf("%w: bitbucket push lists no changes", ErrMalformed)
	}
	pusher := p.Actor.Nickname
	if pusher == "" {
		pusher = p.Actor.DisplayName
	}
	for i, c := range p.Push.Changes {
		push, err := bitbucketChangePush(c)
		if err != nil {
			return Delivery{}, fmt.Errorf("change %d: %w", i, err)
		}
		push.CloneURL, push.Pusher = p.Repository.Links.HTML.Href, pusher
		d.Pushes = append(d.Pushes, push)
	}
	d.Kind = KindPush
	return d, nil
}

// bitbucketChangePush turns one change into a Push.
func bitbucketChangePush(c bitbucketChange) (Push, error) {
	ref := c.New
	if ref == nil {
		ref = c.Old
	}
	if ref == nil {
		return Push{}, fmt.Errorf("%w: bitbucket change has neither new nor old", ErrMalformed)
	}
	var full string
	switch ref.Type {
	case "branch", "named_branch":
		full = "refs/heads/" + ref.Name
	case "tag", "annotated_tag":
		full = "refs/tags/" + ref.Name
	default:
		return Push{}, fmt.Errorf("%w: bitbucket ref type %q is neither branch nor tag", ErrMalformed, ref.Type)
	}
	var before, after string
	if c.Old != nil {
		before = c.Old.Target.Hash
	}
	deleted := c.New == nil || c.Closed
	if !deleted {
		after = c.New.Target.Hash
	}
	push, err := normalize(full, before, after, "", deleted)
	if err != nil {
		return Push{}, err
	}
	if !deleted {
		push.HeadMessage = c.New.Target.Message
	}
	return push, nil
}
