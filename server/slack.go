package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/swarmhook/swarmhook/chatops"
	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
)

// maxChatBody bounds a Slack request: a slash command is a few hundred
// bytes, a button press carries the message it was on.
const maxChatBody = 64 << 10

// errNotAvailable is a chat command this server does not have yet.
var errNotAvailable = errors.New("not available on this server")

// mountChat serves POST /chat/slack when the config has chat.slack.
func (s *Server) mountChat() {
	cfg := s.d.Config.Chat.Slack
	if cfg == nil {
		return
	}
	sl, err := chatops.NewSlack(cfg, chatActions{s}, chatops.Options{
		Log: s.d.Log.With().Str("component", "slack").Logger(), Now: s.d.Now, HTTP: s.d.ChatHTTP,
		ErrorText: publicError,
	})
	if err != nil {
		// config.Load checked the prefixes: this is a bug, said loudly.
		s.d.Log.Error().Err(err).Msg("chat.slack not served")
		return
	}
	s.echo.POST("/chat/slack", s.slack(sl))
}

// slack verifies and runs one Slack request. A request that fails its
// signature counts against its address as a webhook's does.
func (s *Server) slack(sl *chatops.Slack) echo.HandlerFunc {
	return func(c echo.Context) error {
		remote := remoteHost(c.Request())
		if !s.failures.allow(remote) {
			c.Response().Header().Set("Retry-After", fmt.Sprint(int(failureRefill.Seconds())))
			return fmt.Errorf("%w: too many failed signature checks from %s", errRateLimited, remote)
		}
		body, err := readBody(c, maxChatBody, "Slack request")
		if err != nil {
			return err
		}
		msg, err := sl.Handle(c.Request().Context(), c.Request().Header, body)
		if errors.Is(err, chatops.ErrSignature) || errors.Is(err, chatops.ErrUnsigned) || errors.Is(err, chatops.ErrStale) || errors.Is(err, chatops.ErrReplay) {
			s.failures.fail(remote)
		}
		if err != nil {
			s.d.Log.Warn().Str("remote", remote).Err(err).Msg("slack request refused")
			return err
		}
		return c.JSON(http.StatusOK, msg)
	}
}

// publicError is what a chat user is told of err: what the API would
// answer, and nothing of an internal error.
func publicError(err error) string {
	if status(err) == http.StatusInternalServerError {
		return "internal error"
	}
	return err.Error()
}

// chatActions run chat commands through the API's own code paths: the
// same checks, the same job requests, recorded under the chat user's
// name. No HTTP call back, no token.
type chatActions struct{ s *Server }

func (a chatActions) submit(ctx context.Context, who string, req job.Request, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	req.Who = who
	j, err := a.s.d.Jobs.Submit(ctx, req)
	if err != nil {
		return 0, err
	}
	return j.ID, nil
}

func (a chatActions) Rollback(ctx context.Context, who, service, tag string) (int64, error) {
	req, err := a.s.rollbackRequest(ctx, service, tag)
	return a.submit(ctx, who, req, err)
}

func (a chatActions) Deploy(ctx context.Context, who, project, branch, tag string) (int64, error) {
	req, err := a.s.deployRequest(ctx, project, branch, tag)
	return a.submit(ctx, who, req, err)
}

func (a chatActions) Redeploy(ctx context.Context, who, service string) (int64, error) {
	req, err := a.s.redeployRequest(service)
	return a.submit(ctx, who, req, err)
}

func (a chatActions) Scale(ctx context.Context, who, service string, replicas uint64) (int64, error) {
	req, err := a.s.scaleRequest(service, &replicas)
	return a.submit(ctx, who, req, err)
}

// Promote, Approve, Reject and Freeze go through the code paths behind
// their API routes, as Rollback does.
func (a chatActions) Promote(ctx context.Context, who, project, from, to string) (int64, error) {
	req, err := a.s.promoteRequest(project, from, to)
	return a.submit(ctx, who, req, err)
}

func (a chatActions) Approve(ctx context.Context, who string, id int64) error {
	if err := a.held(ctx, id); err != nil {
		return err
	}
	_, err := a.s.d.Gate.Approve(ctx, id, who, "", a.scopes(who))
	return err
}

func (a chatActions) Reject(ctx context.Context, who string, id int64) error {
	if err := a.held(ctx, id); err != nil {
		return err
	}
	_, err := a.s.d.Gate.Reject(ctx, id, who, "", a.scopes(who))
	return err
}

func (a chatActions) Freeze(_ context.Context, who, target, until, reason string) error {
	if a.s.d.Gate == nil {
		return fmt.Errorf("freeze: %w", errNotAvailable)
	}
	return a.s.setFreeze(who, target, until, reason)
}

// held checks that the server holds deploys and that job id exists.
func (a chatActions) held(ctx context.Context, id int64) error {
	if a.s.d.Gate == nil {
		return fmt.Errorf("approvals: %w", errNotAvailable)
	}
	_, err := a.s.d.Store.Get(ctx, id)
	return err
}

// scopes are those of the chat user recorded as who: an approval
// checks them against the scope its target names. Several entries may
// share a name (one member ID in two workspaces, say) with different
// scopes, and who does not say which of them asked: only the scopes
// every one of them has count, never one entry's admin for another.
func (a chatActions) scopes(who string) []config.Scope {
	var same []config.SlackUser
	for _, u := range a.s.d.Config.Chat.Slack.Users {
		if u.Who() == who {
			same = append(same, u)
		}
	}
	var out []config.Scope
	for _, u := range same {
		for _, sc := range u.Scopes {
			if !slices.Contains(out, sc) && !slices.ContainsFunc(same, func(o config.SlackUser) bool { return !o.Has(sc) }) {
				out = append(out, sc)
			}
		}
	}
	return out
}

// AwaitsApproval reports whether j waits for an approval.
func (a chatActions) AwaitsApproval(j *job.Job) bool {
	return j.Status == job.Waiting && j.Wait != nil && j.Wait.For == job.WaitApproval
}

func (a chatActions) Job(ctx context.Context, id int64) (*job.Job, error) {
	return a.s.d.Store.Get(ctx, id)
}

func (a chatActions) Jobs(ctx context.Context, n int) ([]*job.Job, error) {
	return a.s.d.Store.List(ctx, store.Filter{Limit: n})
}

// Wait follows job id for chat user who, holding one of the follower
// slots ?wait=1 takes (under who, as the API's are under a token), so
// chat commands follow no more jobs than the API would.
func (a chatActions) Wait(ctx context.Context, who string, id int64) (*job.Job, error) {
	release, err := a.s.followers.acquire(who)
	if err != nil {
		return nil, err
	}
	defer release()
	j, err := a.s.d.Store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return a.s.waitJob(ctx, j)
}
