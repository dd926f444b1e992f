package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
// redelivery builds nothing. The record is written with the delivery's
// last job (see job.Request.Delivery) and must outlive the process.
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

// inbound is one webhook delivery as an HTTP server took it in: the
// same for echo's route and the fast one (fast.go).
type inbound struct {
	project string
	header  webhook.Header
	remote  string // the sender's address, without the port
	// body reads the delivery's body within limit, or refuses it with
	// errTooLarge. What it returns need only last until takeDelivery
	// returns.
	body func(limit int64) ([]byte, error)
}

// hookResult is what a delivery gets back, and what it counts as.
type hookResult struct {
	code   int
	answer hookAnswer
	// provider is the Git host once the delivery was parsed, "" before.
	provider string
	// outcome is set when the status alone does not tell it (see
	// deliveryOutcome).
	outcome string
}

// takeDelivery takes a delivery: verify, drop repeats, queue, answer. It
// never waits for a job. An error is the answer too (see errorAnswer);
// the result still says which host sent what was refused, when known.
func (s *Server) takeDelivery(ctx context.Context, in inbound) (hookResult, error) {
	p, ok := s.d.Config.Project(in.project)
	if !ok {
		return hookResult{}, fmt.Errorf("%w: %q", job.ErrUnknownProject, in.project)
	}
	if !s.failures.allow(in.remote) {
		return hookResult{}, fmt.Errorf("%w: too many failed signature checks from %s", errRateLimited, in.remote)
	}
	body, err := in.body(s.d.Config.Webhook.MaxBodyBytes)
	if err != nil {
		return hookResult{}, err
	}
	now := s.d.Now()
	d, err := webhook.Parse(in.header, body, webhook.Policy{Secret: p.Secret, AllowUnsigned: p.AllowUnsigned, Now: now})
	if err != nil {
		if errors.Is(err, webhook.ErrSignature) || errors.Is(err, webhook.ErrUnsigned) {
			s.failures.fail(in.remote)
		}
		s.d.Log.Warn().Str("project", p.Name).Str("remote", in.remote).Err(err).Msg("webhook refused")
		return hookResult{}, err
	}
	res := hookResult{code: http.StatusOK, provider: d.Provider}
	switch d.Kind {
	case webhook.KindPing:
		res.answer.Ignored = "ping"
		return res, nil
	case webhook.KindIgnored:
		res.answer.Ignored = fmt.Sprintf("%s event %q is not a push", d.Provider, d.Event)
		return res, nil
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
	// racing the original cannot slip past the check.
	key := p.Name + "/" + d.ID
	remember := d.ID != "" && s.d.Deliveries != nil
	since := now.Add(-redeliveryWindow)
	if remember {
		defer s.deliveryLocks.Lock(d.Provider + " " + key)()
		// A delivery with one build is checked in the write that records
		// it (see job.Delivery.Since); one with several before the first.
		if len(builds) != 1 {
			jobs, seen, err := s.d.Deliveries.Delivery(ctx, d.Provider, key, since)
			if err != nil {
				return res, err
			}
			if seen && len(jobs) > 0 {
				return s.redelivery(p.Name, &d, jobs), nil
			}
		}
	}
	if len(builds) == 0 {
		res.answer.Ignored = strings.Join(reasons, "; ")
		return res, nil
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
			req.Delivery = &job.Delivery{Provider: d.Provider, ID: key, Earlier: ids, At: now, Since: since}
		}
		j, err := s.d.Jobs.Submit(ctx, req)
		var again *job.RedeliveryError
		if errors.As(err, &again) && len(again.Jobs) > 0 {
			return s.redelivery(p.Name, &d, again.Jobs), nil
		}
		if err != nil {
			// Not remembered: a retry should start what this one could not.
			return res, fmt.Errorf("queue %s: %w", push.Ref, err)
		}
		if e := s.d.Log.Info(); e.Enabled() {
			e.Str("project", p.Name).Str("ref", push.Ref).Int64("job", j.ID).Str("provider", d.Provider).Str("delivery", d.ID).Msg("push queued")
		}
		ids = append(ids, j.ID)
		coalesced = coalesced || j.Pushes > 1
	}
	res.code, res.answer = http.StatusAccepted, answer(ids, strings.Join(reasons, "; "))
	if res.answer.Coalesced = coalesced; coalesced {
		res.outcome = deliveryCoalesced
	}
	return res, nil
}

// hook is echo's route for deliveries (ServeHTTP); the listener serve
// uses takes them on the fast route instead.
func (s *Server) hook(c echo.Context) error {
	r := c.Request()
	res, err := s.takeDelivery(r.Context(), inbound{
		project: c.Param("project"), header: r.Header, remote: remoteHost(r),
		body: func(limit int64) ([]byte, error) { return readBody(c, limit) },
	})
	c.Set(ctxProvider, res.provider)
	c.Set(ctxOutcome, res.outcome)
	if err != nil {
		if errors.Is(err, errRateLimited) {
			c.Response().Header().Set("Retry-After", retryAfter)
		}
		return err
	}
	return c.JSON(res.code, res.answer)
}

// redelivery answers a delivery whose jobs were started already.
func (s *Server) redelivery(project string, d *webhook.Delivery, jobs []int64) hookResult {
	s.d.Log.Info().Str("project", project).Str("provider", d.Provider).Str("delivery", d.ID).Int64("job", jobs[0]).Msg("redelivery ignored")
	return hookResult{code: http.StatusOK, provider: d.Provider, outcome: deliveryRedelivery,
		answer: answer(jobs, "redelivery of "+d.ID+": its jobs were started already")}
}

// answer names the first job, and all of them when there are several.
func answer(ids []int64, ignored string) hookAnswer {
	a := hookAnswer{Job: ids[0], Ignored: ignored}
	if len(ids) > 1 {
		a.Jobs = ids
	}
	return a
}

// readBody reads a delivery up to the configured limit. A declared
// length over the limit is refused before a byte is read; an undeclared
// one is cut off at the limit.
func readBody(c echo.Context, limit int64) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: %d bytes declared, the limit is %d", errTooLarge, r.ContentLength, limit)
	}
	if r.ContentLength > 0 {
		// Declared and within the limit: one read into a buffer of the
		// exact size (a bytes.Buffer would grow past it to read EOF).
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, fmt.Errorf("read delivery: %w", err)
		}
		return body, nil
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(c.Response(), r.Body, limit)); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, fmt.Errorf("%w: the limit is %d bytes", errTooLarge, limit)
		}
		return nil, fmt.Errorf("read delivery: %w", err)
	}
	return buf.Bytes(), nil
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
