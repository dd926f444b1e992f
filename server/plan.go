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
// never a value.
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
	plan, err := s.d.Plans.PlanBranch(c.Request().Context(), c.Param("project"), body.Branch)
	var fe *stack.FileError
	switch {
	case errors.Is(err, job.ErrNoStack):
		return fmt.Errorf("%w: %v", errBadRequest, err)
	case errors.As(err, &fe):
		return echo.NewHTTPError(http.StatusUnprocessableEntity, fe.Error())
	case err != nil:
		return err
	}
	return c.JSON(http.StatusOK, plan)
}
