package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/stack"
	"github.com/swarmhook/swarmhook/webhook"
)

// Planner plans a branch's stack without changing anything;
// *job.Runner satisfies it.
type Planner interface {
	PlanBranch(ctx context.Context, project, branch string) (*stack.Plan, error)
}

// planProject answers POST /api/projects/{p}/plan {"branch": B} with
// the plan of the branch head's stack file: names and changed fields,
// never a value. At most maxPlans run at once, each within the write
// timeout.
func (s *Server) planProject(c echo.Context) error {
	if s.d.Plans == nil {
		return fmt.Errorf("%w: plans are not served", errNotFound)
	}
	var body struct {
		Branch string `json:"branch"`
	}
	if err := bind(c, &body); err != nil {
		return err
	}
	if err := webhook.ValidRefName(body.Branch); err != nil {
		return fmt.Errorf("%w: branch: %v", errBadRequest, err)
	}
	select {
	case s.plans <- struct{}{}:
		defer func() { <-s.plans }()
	default:
		return fmt.Errorf("%w: %d plans are under way, the most the server runs at once; try again shortly", errRateLimited, maxPlans)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.limits.WriteTimeout)
	defer cancel()
	plan, err := s.d.Plans.PlanBranch(ctx, c.Param("project"), body.Branch)
	var fe *stack.FileError
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: the plan of %s did not end within %s", errTimedOut, body.Branch, s.limits.WriteTimeout)
	case errors.Is(err, job.ErrNoStack):
		return fmt.Errorf("%w: %v", errBadRequest, err)
	case errors.As(err, &fe):
		return echo.NewHTTPError(http.StatusUnprocessableEntity, fe.Error())
	case err != nil:
		return err
	}
	return c.JSON(http.StatusOK, plan)
}
