package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/gate"
	"github.com/swarmhook/swarmhook/job"
)

// Gate answers for held deploys and keeps freezes; gate.Gate is one.
type Gate interface {
	// Approve, Reject and DeployNow save the decision with the job
	// before they return it; an error means it is not taken.
	Approve(ctx context.Context, id int64, who, reason string, scopes []config.Scope) (*job.Job, error)
	Reject(ctx context.Context, id int64, who, reason string, scopes []config.Scope) (*job.Job, error)
	DeployNow(ctx context.Context, id int64, who, reason string) (*job.Job, error)
	Freeze(f gate.Freeze) error
	Unfreeze(target string) (bool, error)
	Freezes() []gate.Freeze
}

// maxReason bounds the reason of an override, a rejection or a freeze.
const maxReason = 500

// gateRoutes adds the routes of promotions, approvals and freezes.
func (s *Server) gateRoutes(api *echo.Group) {
	api.POST("/projects/:project/promote", s.promote, s.require(config.ScopeDeploy))
	if s.d.Gate == nil {
		return
	}
	g := s.d.Gate
	api.POST("/jobs/:id/approve", s.decision(false, g.Approve), s.require(config.ScopeApprove))
	api.POST("/jobs/:id/reject", s.decision(false, g.Reject), s.require(config.ScopeApprove))
	api.POST("/jobs/:id/deploy-now", s.decision(true, func(ctx context.Context, id int64, who, reason string, _ []config.Scope) (*job.Job, error) {
		return g.DeployNow(ctx, id, who, reason)
	}), s.require(config.ScopeOverride))
	api.POST("/freeze", s.freeze, s.require(config.ScopeOverride))
	api.DELETE("/freeze", s.unfreeze, s.require(config.ScopeOverride))
	api.GET("/freezes", s.listFreezes, s.require(config.ScopeRead))
}

// promote: POST /api/projects/:project/promote, {"from": "staging",
// "to": "production"}: deploy the digests from's services run to to's.
func (s *Server) promote(c echo.Context) error {
	var body struct {
		From string `json:"from"`
		To   string `json:"to"`
	}
	if err := bind(c, &body); err != nil {
		return err
	}
	req, err := s.promoteRequest(c.Param("project"), body.From, body.To)
	if err != nil {
		return err
	}
	return s.action(c, req)
}

// promoteRequest checks a promotion of project from environment from to
// environment to, and returns its job request.
func (s *Server) promoteRequest(project, from, to string) (job.Request, error) {
	p, ok := s.d.Config.Project(project)
	if !ok {
		return job.Request{}, fmt.Errorf("%w: %q", job.ErrUnknownProject, project)
	}
	source, _, ok := p.Environment(from)
	if !ok {
		return job.Request{}, fmt.Errorf("%w: from: %s has no environment %q", errBadRequest, p.Name, from)
	}
	if source.Stack != nil {
		return job.Request{}, fmt.Errorf("%w: from: %s deploys a stack; promotion copies the images of image targets", errBadRequest, from)
	}
	target, _, ok := p.Environment(to)
	if !ok {
		return job.Request{}, fmt.Errorf("%w: to: %s has no environment %q", errBadRequest, p.Name, to)
	}
	if target.Stack != nil {
		return job.Request{}, fmt.Errorf("%w: to: %s deploys a stack; promotion copies the images of image targets", errBadRequest, to)
	}
	if from == to {
		return job.Request{}, fmt.Errorf("%w: from and to are both %q", errBadRequest, to)
	}
	if target.PromoteFrom != "" && target.PromoteFrom != from {
		return job.Request{}, fmt.Errorf("%w: %s takes promotions from %s only", errBadRequest, to, target.PromoteFrom)
	}
	return job.Request{Project: p.Name, Action: job.ActionPromote, Trigger: job.TriggerManual, From: from, Environment: to}, nil
}

// heldJob reads the id of a held job's route, answering 404 for a job
// that does not exist.
func (s *Server) heldJob(c echo.Context) (int64, error) {
	id, err := jobID(c)
	if err != nil {
		return 0, err
	}
	if _, err := s.d.Store.Get(c.Request().Context(), id); err != nil {
		return 0, err
	}
	return id, nil
}

// reasonBody reads {"reason": "..."}; required says whether it must be
// given.
func reasonBody(c echo.Context, required bool) (string, error) {
	var body struct {
		Reason string `json:"reason"`
	}
	if err := bind(c, &body); err != nil {
		return "", err
	}
	r := strings.TrimSpace(body.Reason)
	switch {
	case required && r == "":
		return "", fmt.Errorf("%w: reason must say why", errBadRequest)
	case len(r) > maxReason:
		return "", fmt.Errorf("%w: reason is over %d bytes", errBadRequest, maxReason)
	}
	return r, nil
}

func who(c echo.Context) string {
	w, _ := c.Get("who").(string)
	return w
}

func scopes(c echo.Context) []config.Scope {
	s, _ := c.Get("scopes").([]config.Scope)
	return s
}

// decision answers POST /api/jobs/:id/approve, /reject and /deploy-now:
// the job id, an optional {"reason": "..."} (required when needReason:
// an override must say why), then decide, whose job it answers with.
// Approve and reject need the scope the target names and refuse the
// token that started the job (see gate.Gate). A 200 means the decision
// is saved with the job; one that could not be saved is an error (503
// when data_dir is at fault) and the job still waits.
func (s *Server) decision(needReason bool, decide func(ctx context.Context, id int64, who, reason string, scopes []config.Scope) (*job.Job, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := s.heldJob(c)
		if err != nil {
			return err
		}
		reason, err := reasonBody(c, needReason)
		if err != nil {
			return err
		}
		j, err := decide(c.Request().Context(), id, who(c), reason, scopes(c))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, j)
	}
}

// freeze: POST /api/freeze, {"target": "production", "until":
// "2026-12-24T00:00:00Z" or "48h", "reason": "..."}.
func (s *Server) freeze(c echo.Context) error {
	var body struct {
		Target string `json:"target"`
		Until  string `json:"until"`
		Reason string `json:"reason"`
	}
	if err := bind(c, &body); err != nil {
		return err
	}
	if err := s.setFreeze(who(c), body.Target, body.Until, body.Reason); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"freezes": s.d.Gate.Freezes()})
}

// setFreeze freezes target until until (see parseUntil) for reason, set
// by who.
func (s *Server) setFreeze(who, target, until, reason string) error {
	if len(reason) > maxReason {
		return fmt.Errorf("%w: reason is over %d bytes", errBadRequest, maxReason)
	}
	end, err := parseUntil(until, s.d.Now())
	if err != nil {
		return err
	}
	return s.d.Gate.Freeze(gate.Freeze{Target: target, Until: end.UTC(), Reason: strings.TrimSpace(reason), Who: who})
}

// parseUntil reads a freeze's end: an RFC 3339 time, or a duration
// from now; it must lie ahead.
func parseUntil(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%w: until: %q is not ahead", errBadRequest, v)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: until: %q is neither a time like 2026-12-24T00:00:00Z nor a duration like 48h", errBadRequest, v)
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("%w: until: %s is not ahead", errBadRequest, v)
	}
	return t, nil
}

// unfreeze: DELETE /api/freeze, {"target": ...} (or ?target=), lifts a
// freeze; deploys waiting for it are asked about again at once.
func (s *Server) unfreeze(c echo.Context) error {
	var body struct {
		Target string `json:"target"`
	}
	if err := bind(c, &body); err != nil {
		return err
	}
	if body.Target == "" {
		body.Target = c.QueryParam("target")
	}
	found, err := s.d.Gate.Unfreeze(body.Target)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: no freeze of %q", errNotFound, body.Target)
	}
	return c.JSON(http.StatusOK, map[string]any{"freezes": s.d.Gate.Freezes()})
}

// listFreezes: GET /api/freezes, the freezes in force.
func (s *Server) listFreezes(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"freezes": s.d.Gate.Freezes()})
}
