package server

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/swarmhook/swarmhook/registry"
	"github.com/swarmhook/swarmhook/source"
)

// upstreamError is a call to another server (the registry, a Git host),
// made while a request waited, that failed: 504 when it ran out of time,
// 502 otherwise.
type upstreamError struct {
	// service is what the other server is, host its host[:port], op what
	// was asked of it.
	service, host, op string
	// timeout is the bound the call had; timedOut says it ran out.
	timeout  time.Duration
	timedOut bool
	err      error
	// redact are strings (credentials) never shown, should err hold one.
	redact []string
}

func (e *upstreamError) Error() string {
	msg := e.err.Error()
	for _, r := range e.redact {
		if r != "" {
			msg = strings.ReplaceAll(msg, r, "xxxxx")
		}
	}
	if e.timedOut {
		return fmt.Sprintf("%s %s did not answer within %s (%s): %s", e.service, e.host, e.timeout, e.op, msg)
	}
	return fmt.Sprintf("%s %s failed (%s): %s", e.service, e.host, e.op, msg)
}

func (e *upstreamError) Unwrap() error { return e.err }

// callUpstream runs call within timeout and wraps its failure in an
// upstreamError, except for an answer the other server did give (no such
// tag or repository, no such branch), which is returned as it is.
func callUpstream(ctx context.Context, timeout time.Duration, e upstreamError, call func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	e.err = call(ctx)
	if e.err == nil || errors.Is(e.err, registry.ErrNotFound) || errors.Is(e.err, source.ErrCommitNotFound) {
		return e.err
	}
	e.timeout, e.timedOut = timeout, errors.Is(ctx.Err(), context.DeadlineExceeded)
	return &e
}

// tags lists repo's tags within the upstream timeout; a registry that
// fails or stalls is named in the error.
func (s *Server) tags(ctx context.Context, repo string) ([]string, error) {
	var tags []string
	err := callUpstream(ctx, s.limits.UpstreamTimeout,
		upstreamError{service: "registry", host: s.d.Config.Registry.Host, op: "list the tags of " + repo},
		func(ctx context.Context) (err error) {
			tags, err = s.d.Registry.Tags(ctx, repo)
			return err
		})
	return tags, err
}

// gitHost names the server a clone URL points at (host[:port], never its
// user or password), or the path of a local repository.
func gitHost(repo string) string {
	if u, err := url.Parse(repo); err == nil && u.Scheme != "" {
		if u.Host != "" {
			return u.Host
		}
		return u.Path
	}
	// user@host:path, as ssh takes it.
	if _, rest, ok := strings.Cut(repo, "@"); ok {
		repo = rest
	}
	host, _, _ := strings.Cut(repo, ":")
	return host
}

// urlPassword is the password a clone URL carries, if any.
func urlPassword(repo string) string {
	if u, err := url.Parse(repo); err == nil && u.User != nil {
		p, _ := u.User.Password()
		return p
	}
	return ""
}
