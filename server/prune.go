package server

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/prune"
)

// Pruner plans and runs registry prunes.
type Pruner interface {
	// Plan says what a prune would delete and why each other tag stays.
	Plan(ctx context.Context) (*prune.Report, error)
	// Run prunes and records the run as a job; prune.ErrRunning when
	// another run is under way.
	Run(ctx context.Context, trigger job.Trigger, who string) (*prune.Report, error)
}

// prune answers POST /api/prune. {"dry_run": true} returns the plan and
// deletes nothing; otherwise the prune runs to its end (a client that
// leaves does not stop it) and the report names the job recording it.
// Either can take minutes, so the answer is a late one (lateAnswer).
func (s *Server) prune(c echo.Context) error {
	if s.d.Prune == nil {
		return errNotFound
	}
	var body struct {
		DryRun bool `json:"dry_run"`
	}
	if err := bind(c, &body); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if body.DryRun {
		rep, err := s.d.Prune.Plan(ctx)
		s.lateAnswer(c)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, rep)
	}
	who, _ := c.Get("who").(string)
	rep, err := s.d.Prune.Run(context.WithoutCancel(ctx), job.TriggerManual, who)
	s.lateAnswer(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}
