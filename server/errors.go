package server

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/chatops"
	"github.com/swarmhook/swarmhook/gate"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/prune"
	"github.com/swarmhook/swarmhook/registry"
	"github.com/swarmhook/swarmhook/source"
	"github.com/swarmhook/swarmhook/store"
	"github.com/swarmhook/swarmhook/updater"
	"github.com/swarmhook/swarmhook/webhook"
)

// errTooLarge is returned for bodies over the configured limit.
var errTooLarge = errors.New("request body is over the size limit")

// errBodyTimeout is a request body that did not arrive within the read
// timeout (Limits.ReadTimeout).
var errBodyTimeout = errors.New("request body did not arrive in time")

// status maps an error to its HTTP status. It is the only place that
// decides one.
func status(err error) int {
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	var up *upstreamError
	var missing *updater.NoServiceError
	switch {
	case errors.As(err, &he):
		return he.Code
	case errors.As(err, &mbe), errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, webhook.ErrSignature), errors.Is(err, webhook.ErrUnsigned), errors.Is(err, errUnauthorized),
		errors.Is(err, chatops.ErrSignature), errors.Is(err, chatops.ErrUnsigned), errors.Is(err, chatops.ErrStale),
		errors.Is(err, chatops.ErrReplay):
		return http.StatusUnauthorized
	case errors.Is(err, errForbidden), errors.Is(err, gate.ErrSelfApproval), errors.Is(err, gate.ErrScope):
		return http.StatusForbidden
	case errors.Is(err, webhook.ErrMalformed), errors.Is(err, errBadRequest), errors.Is(err, chatops.ErrMalformed), errors.Is(err, chatops.ErrResponseURL),
		errors.Is(err, gate.ErrNoReason), errors.Is(err, gate.ErrBadTarget), errors.Is(err, gate.ErrPast):
		return http.StatusBadRequest
	case errors.Is(err, job.ErrUnknownProject), errors.Is(err, store.ErrNotFound), errors.Is(err, errNotFound), errors.Is(err, errNoSuchTag),
		errors.Is(err, source.ErrCommitNotFound), errors.Is(err, registry.ErrNotFound), errors.As(err, &missing):
		return http.StatusNotFound
	case errors.Is(err, errBodyTimeout):
		return http.StatusRequestTimeout
	case errors.As(err, &up) && up.timedOut, errors.Is(err, errTimedOut):
		return http.StatusGatewayTimeout
	case errors.As(err, &up):
		return http.StatusBadGateway
	case errors.Is(err, prune.ErrRunning), errors.Is(err, gate.ErrNotHeld), errors.Is(err, gate.ErrWrongWait):
		return http.StatusConflict
	case errors.Is(err, errNotAvailable):
		return http.StatusNotImplemented
	case errors.Is(err, errRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, job.ErrQueueFull), errors.Is(err, job.ErrShuttingDown):
		return http.StatusServiceUnavailable
	case dataDirFault(err):
		// The sender should try again, and the operator read why.
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// dataDirFault reports whether err is the data directory's fault, not
// the request's: full, failing or damaged.
func dataDirFault(err error) bool {
	return errors.Is(err, store.ErrFull) || errors.Is(err, store.ErrIO) || errors.Is(err, store.ErrCorrupt)
}

var (
	errUnauthorized = errors.New("missing or unknown bearer token")
	errForbidden    = errors.New("token lacks the scope for this")
	errBadRequest   = errors.New("bad request")
	errNotFound     = errors.New("not found")
	errRateLimited  = errors.New("rate limited")
	// errTimedOut is work done on a request that did not end in time.
	errTimedOut = errors.New("timed out")
)

// errorHandler writes every error as {"error": "..."} with its status.
// Internal errors are logged in full and shown to the caller in brief.
func errorHandler(log zerolog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		code := status(err)
		msg := err.Error()
		var he *echo.HTTPError
		if errors.As(err, &he) {
			if s, ok := he.Message.(string); ok {
				msg = s
			}
		}
		if code == http.StatusInternalServerError {
			log.Error().Err(err).Str("path", c.Path()).Msg("request failed")
			msg = "internal error"
		} else if dataDirFault(err) {
			log.Error().Err(err).Str("path", c.Path()).Msg("request refused: data_dir cannot take it")
		}
		if c.Request().Method == http.MethodHead {
			c.NoContent(code)
			return
		}
		c.JSON(code, map[string]string{"error": msg})
	}
}
