package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/internal/keylock"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
)

// Submitter queues jobs (*job.Runner).
type Submitter interface {
	Submit(ctx context.Context, req job.Request) (*job.Job, error)
	// Waiting returns build id as it waits in the queue, newer than its
	// record while pushes join it; false when it does not wait.
	Waiting(id int64) (*job.Job, bool)
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
	Config *config.Config
	Jobs   Submitter
	Store  JobReader
	Logs   LogReader
	Swarm  Swarm
	// Stacks lists the services of stack targets for GET /api/services;
	// nil lists none of them.
	Stacks   job.StackServices
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
	// Engines, when set, lists the build engines of docker.builders
	// under engines in /readyz, read after the checks ran.
	Engines EngineStates
	// Metrics serves GET /metrics; nil serves none.
	Metrics http.Handler
	// DeliveryCounter counts webhook deliveries; nil counts none.
	DeliveryCounter DeliveryCounter
	// Prune plans and runs registry prunes; nil answers 404.
	Prune Pruner
	// Plans plans stack deploys for POST /api/projects/{p}/plan; nil
	// answers 404.
	Plans Planner
	// Limits bound what one client can hold; zero fields take the
	// defaults (see Limits).
	Limits Limits
	// Gate answers approvals and overrides and keeps freezes; nil
	// serves none of their routes.
	Gate Gate
	// ChatHTTP posts chat answers to Slack's response URLs; nil uses a
	// client with a 10 s timeout.
	ChatHTTP *http.Client
	// Sessions lets the API accept the dashboard's session cookie beside
	// bearer tokens; nil accepts bearer tokens only.
	Sessions Sessions
	// Dashboard is the web UI at /; nil serves none.
	Dashboard Dashboard
}

// Dashboard is a web UI mounted beside the API.
type Dashboard interface {
	http.Handler
	// Paths are the paths it serves, in echo's syntax ("/jobs/*").
	Paths() []string
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
	// plans holds a token for each plan under way (maxPlans).
	plans chan struct{}
}

// New builds the routes.
func New(d Deps) *Server {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	if d.Now == nil {
		d.Now = time.Now
	}
	l := d.Limits.withDefaults()
	s := &Server{d: d, echo: e, failures: newFailureLimiter(d.Now), limits: l, followers: newFollowers(l.FollowersPerToken, l.Followers),
		plans: make(chan struct{}, maxPlans)}
	e.HTTPErrorHandler = errorHandler(d.Log)
	// The access log is outermost, so it records the status a recovered
	// panic answers.
	e.Use(accessLog(d.Log), recoverPanics(d.Log))

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
	api.POST("/projects/:project/plan", s.planProject, s.require(config.ScopeRead))
	api.POST("/prune", s.prune, s.require(config.ScopeAdmin))
	s.gateRoutes(api) // server/gate.go
	s.mountChat()
	if d.Dashboard != nil {
		// Only its own paths, so the API and hooks keep their 404s and 405s.
		for _, p := range d.Dashboard.Paths() {
			e.Any(p, echo.WrapHandler(d.Dashboard))
		}
	}
	return s
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// accessLog logs every request once it is answered: method, path
// (never the query, which may carry a secret, nor any header), the
// status written and the time taken. Reads are polled by scripts and
// UIs: successful GETs log at debug, everything else at info.
func accessLog(log zerolog.Logger) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		// Errors are answered (by errorHandler) before the line is
		// written, so Status is what the client got.
		HandleError: true,
		LogLatency:  true,
		LogMethod:   true,
		LogURIPath:  true,
		LogStatus:   true,
		LogValuesFunc: func(_ echo.Context, v middleware.RequestLoggerValues) error {
			ev := log.Info()
			if v.Method == http.MethodGet && v.Status < 400 {
				ev = log.Debug()
			}
			ev.Str("method", v.Method).Str("path", v.URIPath).
				Int("status", v.Status).Dur("took", v.Latency).Msg("request")
			return nil
		},
	})
}

// recoverPanics answers a panicking handler 500 (through errorHandler)
// and logs the panic with its stack; the server goes on serving.
func recoverPanics(log zerolog.Logger) echo.MiddlewareFunc {
	return middleware.RecoverWithConfig(middleware.RecoverConfig{
		DisableStackAll: true,
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			log.Error().Err(err).Str("path", c.Path()).Bytes("stack", stack).Msg("handler panicked")
			return fmt.Errorf("handler panicked: %w", err)
		},
	})
}

// Sessions recognise the dashboard's signed-in browsers.
type Sessions interface {
	// Authenticate returns the token (name and scopes) the request's
	// session cookie stands for; ok is false when it has none. An unsafe
	// request with a session but without its CSRF token is an error.
	Authenticate(r *http.Request) (t config.Token, ok bool, err error)
}

// require checks the bearer token (echo's KeyAuth takes it from
// "Authorization: Bearer <token>") or, for a request without one, the
// dashboard's session cookie (Deps.Sessions), and that it carries scope
// (or admin): no or an unknown token is errUnauthorized, a missing scope
// or a cross-site request with a cookie errForbidden. The token's name
// is kept on the context for the job record.
func (s *Server) require(scope config.Scope) echo.MiddlewareFunc {
	allowed := func(t config.Token, c echo.Context) error {
		if !slices.Contains(t.Scopes, scope) && !slices.Contains(t.Scopes, config.ScopeAdmin) {
			return fmt.Errorf("%w: %s needs %q", errForbidden, t.Name, scope)
		}
		c.Set("who", t.Name)
		c.Set("scopes", t.Scopes)
		return nil
	}
	bearer := middleware.KeyAuthWithConfig(middleware.KeyAuthConfig{
		Validator: func(key string, c echo.Context) (bool, error) {
			t, ok := s.d.Config.TokenFor(key)
			if !ok {
				return false, nil
			}
			return true, allowed(t, c)
		},
		ErrorHandler: func(err error, _ echo.Context) error {
			if errors.Is(err, errForbidden) {
				return err
			}
			// Missing, malformed or unknown: KeyAuth's own error would
			// be 400 for some of these, the API documents 401 for all.
			return errUnauthorized
		},
	})
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		viaBearer := bearer(next)
		return func(c echo.Context) error {
			if s.d.Sessions == nil || c.Request().Header.Get(echo.HeaderAuthorization) != "" {
				return viaBearer(c)
			}
			t, ok, err := s.d.Sessions.Authenticate(c.Request())
			switch {
			case err != nil:
				return fmt.Errorf("%w: %w", errForbidden, err)
			case !ok:
				return viaBearer(c)
			}
			if err := allowed(t, c); err != nil {
				return err
			}
			return next(c)
		}
	}
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
	return c.JSON(http.StatusOK, s.newest(j))
}

// newest is j, or the queue's copy while it waits there: the pushes
// that join a waiting build reach its record only when it starts.
func (s *Server) newest(j *job.Job) *job.Job {
	if j.Status == job.Queued && s.d.Jobs != nil {
		if w, ok := s.d.Jobs.Waiting(j.ID); ok {
			return w
		}
	}
	return j
}
