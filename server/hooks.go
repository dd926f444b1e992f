package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/webhook"
)

// redeliveryWindow is how long a delivery id is remembered. Hosts retry
// within minutes and people press "redeliver" within hours; a day covers
// both, as the intake issue asks.
const redeliveryWindow = 24 * time.Hour

// Deliveries tells which jobs a webhook delivery started, so that a
// redelivery builds nothing (*job.Runner: the builds it holds, then the
// store). The record is written with the delivery's last job (see
// job.Request.Delivery) and must outlive the process.
// Implementations are safe for concurrent use.
type Deliveries interface {
	// Delivery returns the jobs delivery id of provider started, if it
	// arrived after since.
	Delivery(ctx context.Context, provider, id string, since time.Time) ([]int64, bool, error)
}

// hookAnswer is the JSON every webhook delivery gets back: the job it
// started (every job, when it started several), or why it started none.
// Errors are {"error": ...}, written by errorHandler.
type hookAnswer struct {
	Job  int64   `json:"job,omitempty"`
	Jobs []int64 `json:"jobs,omitempty"`
	// Coalesced: the push joined a build of its branch that was already
	// waiting, which will build this push's commit (job.Job.Pushes).
	Coalesced bool   `json:"coalesced,omitempty"`
	Ignored   string `json:"ignored,omitempty"`
}

// hook takes a delivery: verify, drop repeats, queue, answer. It never
// waits for a job.
func (s *Server) hook(c echo.Context) error {
	ctx := c.Request().Context()
	p, ok := s.d.Config.Project(c.Param("project"))
	if !ok {
		return fmt.Errorf("%w: %q", job.ErrUnknownProject, c.Param("project"))
	}
	remote := remoteHost(c.Request())
	if !s.failures.allow(remote) {
		c.Response().Header().Set("Retry-After", fmt.Sprint(int(failureRefill.Seconds())))
		return fmt.Errorf("%w: too many failed signature checks from %s", errRateLimited, remote)
	}
	body, err := readBody(c, s.d.Config.Webhook.MaxBodyBytes, "delivery")
	if err != nil {
		return err
	}
	now := s.d.Now()
	d, err := webhook.Parse(c.Request().Header, body, webhook.Policy{Secret: p.Secret, AllowUnsigned: p.AllowUnsigned, Now: now})
	if err != nil {
		if errors.Is(err, webhook.ErrSignature) || errors.Is(err, webhook.ErrUnsigned) {
			s.failures.fail(remote)
		}
		s.d.Log.Warn().Str("project", p.Name).Str("remote", remote).Err(err).Msg("webhook refused")
		return err
	}
	c.Set(ctxProvider, d.Provider)
	switch d.Kind {
	case webhook.KindPing:
		return c.JSON(http.StatusOK, hookAnswer{Ignored: "ping"})
	case webhook.KindIgnored:
		return c.JSON(http.StatusOK, hookAnswer{Ignored: fmt.Sprintf("%s event %q is not a push", d.Provider, d.Event)})
	}

	var builds []webhook.Push
	var reasons []string
	for _, push := range d.Pushes {
		if why := skipReason(p, push); why != "" {
			reasons = append(reasons, why)
			continue
		}
		builds = append(builds, push)
	}

	// One delivery id is handled by one request at a time, so a retry
	// racing the original cannot slip past the check (the runner counts
	// on it: see job.Delivery).
	key := p.Name + "/" + d.ID
	remember := d.ID != "" && s.d.Deliveries != nil
	if remember {
		defer s.deliveryLocks.Lock(d.Provider + " " + key)()
		jobs, seen, err := s.d.Deliveries.Delivery(ctx, d.Provider, key, now.Add(-redeliveryWindow))
		if err != nil {
			return err
		}
		if seen && len(jobs) > 0 {
			return s.redelivery(c, p.Name, &d, jobs)
		}
	}
	if len(builds) == 0 {
		return c.JSON(http.StatusOK, hookAnswer{Ignored: strings.Join(reasons, "; ")})
	}
	ids := make([]int64, 0, len(builds))
	coalesced := false
	for i, push := range builds {
		req := job.Request{
			Project: p.Name, Trigger: job.TriggerPush, Ref: push.Ref, Branch: push.Name,
			Commit: push.Commit, DeliveryID: d.ID, Who: push.Pusher,
		}
		if i == len(builds)-1 && remember {
			// Remembered with the last job, in the same write: a 202
			// always comes with its delivery record.
			req.Delivery = &job.Delivery{Provider: d.Provider, ID: key, Earlier: ids, At: now}
		}
		j, err := s.d.Jobs.Submit(ctx, req)
		if err != nil {
			// Not remembered: a retry should start what this one could not.
			return fmt.Errorf("queue %s: %w", push.Ref, err)
		}
		if e := s.d.Log.Info(); e.Enabled() {
			e.Str("project", p.Name).Str("ref", push.Ref).Int64("job", j.ID).Str("provider", d.Provider).Str("delivery", d.ID).Msg("push queued")
		}
		ids = append(ids, j.ID)
		coalesced = coalesced || j.Pushes > 1
	}
	a := answer(ids, strings.Join(reasons, "; "))
	if a.Coalesced = coalesced; coalesced {
		c.Set(ctxOutcome, deliveryCoalesced)
	}
	return c.JSON(http.StatusAccepted, a)
}

// redelivery answers a delivery whose jobs were started already.
func (s *Server) redelivery(c echo.Context, project string, d *webhook.Delivery, jobs []int64) error {
	c.Set(ctxOutcome, deliveryRedelivery)
	s.d.Log.Info().Str("project", project).Str("provider", d.Provider).Str("delivery", d.ID).Int64("job", jobs[0]).Msg("redelivery ignored")
	return c.JSON(http.StatusOK, answer(jobs, "redelivery of "+d.ID+": its jobs were started already"))
}

// answer names the first job, and all of them when there are several.
func answer(ids []int64, ignored string) hookAnswer {
	a := hookAnswer{Job: ids[0], Ignored: ignored}
	if len(ids) > 1 {
		a.Jobs = ids
	}
	return a
}

// skipReason says why a push starts no job, or "" when it should build.
func skipReason(p *config.Project, push webhook.Push) string {
	switch {
	case push.Deleted:
		return fmt.Sprintf("%s was deleted", push.Ref)
	case push.IsTag && len(p.Tags) == 0:
		return fmt.Sprintf("tag %s: the project builds no tags (see tags:)", push.Name)
	case push.IsTag && !p.BuildsTag(push.Name):
		return fmt.Sprintf("tag %s matches none of the project's tags", push.Name)
	case !push.IsTag && !p.BuildsBranch(push.Name):
		return fmt.Sprintf("branch %s matches none of the project's branches", push.Name)
	case strings.Contains(push.HeadMessage, "[skip ci]") || strings.Contains(push.HeadMessage, "[ci skip]"):
		return fmt.Sprintf("%s: head commit asks to skip CI", push.Ref)
	}
	return ""
}
