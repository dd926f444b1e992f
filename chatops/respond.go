package chatops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// ErrResponseURL is a request whose response_url is not under one of the
// allowed prefixes: swarmhook would not post there, so it starts nothing.
var ErrResponseURL = errors.New("chatops: response_url is not an allowed Slack URL")

// postTimeout bounds one post to a response URL; Slack answers in well
// under a second.
const postTimeout = 10 * time.Second

// responder posts to response URLs under allowed prefixes only. The
// sender of a request chooses its response_url; without the check a
// signed request (or a leaked signing secret) could make swarmhook call
// any address it can reach, such as the Docker socket's TCP port or a
// cloud metadata service.
type responder struct {
	allowed []*url.URL
	http    *http.Client
}

func newResponder(prefixes []string, h *http.Client) (*responder, error) {
	r := &responder{http: h}
	if r.http == nil {
		r.http = &http.Client{Timeout: postTimeout}
	}
	// A redirect could lead anywhere: never follow one.
	c := *r.http
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r.http = &c
	for _, p := range prefixes {
		u, err := url.Parse(p)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("response URL prefix %q: not an absolute URL", p)
		}
		if !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
		}
		r.allowed = append(r.allowed, u)
	}
	return r, nil
}

// check returns ErrResponseURL unless raw is under an allowed prefix:
// the same scheme, the same host and port, and a path below the
// prefix's, compared on the parsed URL so that
// https://hooks.slack.com.evil.example/ or https://hooks.slack.com@evil/
// never pass. Its errors never quote raw: a response URL is a
// credential for its channel, and one with userinfo carries another.
func (r *responder) check(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%w: it does not parse as a URL", ErrResponseURL)
	case u.User != nil:
		return fmt.Errorf("%w: it carries a user name or password", ErrResponseURL)
	case u.Host == "":
		return fmt.Errorf("%w: it is not an absolute URL", ErrResponseURL)
	}
	clean := u.JoinPath() // resolves dot segments
	for _, a := range r.allowed {
		if u.Scheme == a.Scheme && strings.EqualFold(u.Host, a.Host) && strings.HasPrefix(clean.Path, a.Path) && !strings.Contains(u.Path, "..") {
			return nil
		}
	}
	return fmt.Errorf("%w: its host %s is not %s (chat.slack.response_urls)", ErrResponseURL, u.Host, r.allowed[0].Host)
}

// post sends msg to a response URL, checked again here so that no path
// posts to an unchecked one.
func (r *responder) post(ctx context.Context, raw string, msg *slack.WebhookMessage) error {
	if err := r.check(raw); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, postTimeout)
	defer cancel()
	if err := slack.PostWebhookCustomHTTPContext(ctx, raw, r.http, msg); err != nil {
		// The URL is a credential for the channel: keep it out.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("post to Slack: %w", ue.Err)
		}
		return fmt.Errorf("post to Slack: %w", err)
	}
	return nil
}
