package server

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/webhook"
)

// hookAnswer is the JSON every webhook delivery gets back.
type hookAnswer struct {
	Job     int64   `json:"job,omitempty"`
	Jobs    []int64 `json:"jobs,omitempty"`
	Ignored string  `json:"ignored,omitempty"`
}

// hook takes a push delivery: verify, queue, answer. It never waits for
// the job.
func (s *Server) hook(c echo.Context) error {
	ctx := c.Request().Context()
	p, ok := s.d.Config.Project(c.Param("project"))
	if !ok {
		return fmt.Errorf("%w: %q", job.ErrUnknownProject, c.Param("project"))
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, s.d.Config.Webhook.MaxBodyBytes))
	if err != nil {
		return fmt.Errorf("read delivery: %w", err)
	}
	d, err := webhook.Parse(c.Request().Header, body, p.Secret, false)
	if err != nil {
		s.d.Log.Warn().Str("project", p.Name).Str("remote", c.RealIP()).Err(err).Msg("webhook refused")
		return err
	}
	switch d.Kind {
	case webhook.KindPing:
		return c.JSON(http.StatusOK, hookAnswer{Ignored: "ping"})
	case webhook.KindIgnored:
		return c.JSON(http.StatusOK, hookAnswer{Ignored: "event " + d.Event + " is not a push"})
	}
	var ids []int64
	var reasons []string
	for _, push := range d.Pushes {
		if why := skipReason(p, push); why != "" {
			reasons = append(reasons, why)
			continue
		}
		j, err := s.d.Jobs.Submit(ctx, job.Request{
			Project: p.Name, Trigger: job.TriggerPush, Ref: push.Ref, Branch: push.Name,
			Commit: push.After, DeliveryID: d.ID, Who: push.Pusher,
		})
		if err != nil {
			return err
		}
		s.d.Log.Info().Str("project", p.Name).Str("branch", push.Name).Int64("job", j.ID).Str("provider", d.Provider).Msg("push queued")
		ids = append(ids, j.ID)
	}
	switch len(ids) {
	case 0:
		return c.JSON(http.StatusOK, hookAnswer{Ignored: strings.Join(reasons, "; ")})
	case 1:
		return c.JSON(http.StatusAccepted, hookAnswer{Job: ids[0]})
	default:
		return c.JSON(http.StatusAccepted, hookAnswer{Jobs: ids})
	}
}

// skipReason says why a push starts no job, or "" when it should build.
func skipReason(p *config.Project, push webhook.Push) string {
	switch {
	case push.Deleted:
		return fmt.Sprintf("%s was deleted", push.Ref)
	case push.IsTag:
		return fmt.Sprintf("tag push %s: project builds branches only", push.Name)
	case !p.BuildsBranch(push.Name):
		return fmt.Sprintf("branch %s matches none of the project's branches", push.Name)
	case strings.Contains(push.HeadMessage, "[skip ci]") || strings.Contains(push.HeadMessage, "[ci skip]"):
		return "head commit asks to skip CI"
	}
	return ""
}
