package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/internal/keylock"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
)

// Submitter queues jobs.
type Submitter interface {
	Submit(ctx context.Context, req job.Request) (*job.Job, error)
}

// JobReader reads job records.
type JobReader interface {
	Get(ctx context.Context, id int64) (*job.Job, error)
	List(ctx context.Context, f store.Filter) ([]*job.Job, error)
}

// LogReader opens job logs.
type LogReader interface {
	Open(id int64) (io.ReadCloser, error)
}

// Deps are the server's collaborators.
type Deps struct {
	Config   *config.Config
	Jobs     Submitter
	Store    JobReader
	Logs     LogReader
	Swarm    Swarm
	Registry Registry
	Heads    Heads
	Log      zerolog.Logger
	// Deliveries drops redelivered webhooks; nil remembers nothing.
	Deliveries Deliveries
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Ready are the checks GET /readyz runs; all must pass.
	Ready []Check
	// Warn are checks GET /readyz also runs and reports, under warnings,
	// without being unready when they fail.
	Warn []Check
	// Metrics serves GET /metrics; nil serves none.
	Metrics http.Handler
	// DeliveryCounter counts webhook deliveries; nil counts none.
	DeliveryCounter DeliveryCounter
	// Prune plans and runs registry prunes; nil answers 404.
	Prune Pruner
	// Limits bound what one client can hold; zero fields take the
	// defaults (see Limits).
	Limits Limits
}

// Server is the HTTP edge. It is an http.Handler; HTTPServer serves it
// with the read, write and idle bounds of its Limits.
type Server struct {
	d    Deps
	echo *echo.Echo
	// failures rate-limits addresses that fail signature checks.
	failures *failureLimiter
	// deliveryLocks keeps two copies of one delivery apart.
	deliveryLocks keylock.Set
	limits        Limits
	// followers caps GET /api/jobs/:id/log?follow=1 streams.
	followers *followers
}

// New builds the routes.
func New(d Deps) *Server {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	if d.Now == nil {
		d.Now = time.Now
	}
	l := d.Limits.withDefaults()
	s := &Server{d: d, echo: e, failures: newFailureLimiter(d.Now), limits: l, followers: newFollowers(l.FollowersPerToken, l.Followers)}
	e.HTTPErrorHandler = errorHandler(d.Log)
	e.Use(s.accessLog)

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", s.readyz)
	if d.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(d.Metrics))
	}
	e.POST("/hooks/:project", s.hook, s.countDelivery)

	api := e.Group("/api")
	api.GET("/jobs", s.listJobs, s.require(config.ScopeRead))
	api.GET("/jobs/:id", s.getJob, s.require(config.ScopeRead))
	api.GET("/jobs/:id/log", s.getLog, s.require(config.ScopeRead))
	api.GET("/services", s.listServices, s.require(config.ScopeRead))
	api.GET("/services/:service/tags", s.serviceTags, s.require(config.ScopeRead))
	api.POST("/services/:service/rollback", s.rollback, s.require(config.ScopeRollback))
	api.POST("/services/:service/redeploy", s.redeploy, s.require(config.ScopeDeploy))
	api.POST("/services/:service/scale", s.scale, s.require(config.ScopeScale))
	api.POST("/projects/:project/deploy", s.deployProject, s.require(config.ScopeDeploy))
	api.POST("/prune", s.prune, s.require(config.ScopeAdmin))
	return s
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		code := c.Response().Status
		if err != nil {
			code = status(err)
		}
		// Reads are polled by scripts and UIs: keep them out of info logs.
		ev := s.d.Log.Info()
		if c.Request().Method == http.MethodGet && code < 400 {
			ev = s.d.Log.Debug()
		}
		ev.Str("method", c.Request().Method).Str("path", c.Request().URL.Path).
			Int("status", code).Dur("took", time.Since(start)).Msg("request")
		return err
	}
}

// require checks the bearer token and that it carries scope (or admin).
// The token's name is kept on the context for the job record.
func (s *Server) require(scope config.Scope) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			t, ok := s.token(c.Request().Header.Get("Authorization"))
			if !ok {
				return errUnauthorized
			}
			if !slices.Contains(t.Scopes, scope) && !slices.Contains(t.Scopes, config.ScopeAdmin) {
				return fmt.Errorf("%w: %s needs %q", errForbidden, t.Name, scope)
			}
			c.Set("who", t.Name)
			return next(c)
		}
	}
}

// token finds the configured token matching an Authorization header. Every
// token is compared, in constant time over equal-length hashes.
func (s *Server) token(header string) (config.Token, bool) {
	given, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || given == "" {
		return config.Token{}, false
	}
	g := sha256.Sum256([]byte(given))
	var found config.Token
	match := 0
	for _, t := range s.d.Config.Tokens {
		w := sha256.Sum256([]byte(t.Token))
		if subtle.ConstantTimeCompare(g[:], w[:]) == 1 {
			found, match = t, 1
		}
	}
	return found, match == 1
}

func jobID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: job id %q is not a positive number", errBadRequest, c.Param("id"))
	}
	return id, nil
}

func (s *Server) getJob(c echo.Context) error {
	id, err := jobID(c)
	if err != nil {
		return err
	}
	j, err := s.d.Store.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, j)
}
