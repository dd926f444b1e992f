package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// DeliveryCounter counts webhook deliveries by Git host and outcome. It
// must be safe for concurrent use.
type DeliveryCounter interface {
	Delivery(provider, outcome string)
}

// Delivery outcomes, as counted.
const (
	deliveryAccepted   = "accepted"   // started at least one job
	deliveryCoalesced  = "coalesced"  // joined builds that were waiting
	deliveryIgnored    = "ignored"    // ping, not a push, or no branch matched
	deliveryRedelivery = "redelivery" // a repeat of a delivery already taken
	deliveryRefused    = "refused"    // bad signature, malformed, rate limited, unknown project
	deliveryError      = "error"      // ours: store or queue trouble
)

// Keys of values hook leaves on the echo context for countDelivery.
const (
	ctxProvider = "delivery.provider"
	ctxOutcome  = "delivery.outcome"
)

// providerHeaders tell the Git host from the event header it sends, for
// deliveries refused before they are parsed. Forgejo also sends Gitea's
// headers, so it comes first.
var providerHeaders = []struct{ header, provider string }{
	{"X-Forgejo-Event", "forgejo"},
	{"X-Gitea-Event", "gitea"},
	{"X-Gogs-Event", "gogs"},
	{"X-GitHub-Event", "github"},
	{"X-Gitlab-Event", "gitlab"},
	{"X-Event-Key", "bitbucket"},
}

func providerHint(h http.Header) string {
	for _, p := range providerHeaders {
		if h.Get(p.header) != "" {
			return p.provider
		}
	}
	return "generic"
}

// countDelivery counts each delivery hook answers, by provider and
// outcome.
func (s *Server) countDelivery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if s.d.DeliveryCounter == nil {
			return err
		}
		provider, _ := c.Get(ctxProvider).(string)
		if provider == "" {
			provider = providerHint(c.Request().Header)
		}
		outcome, _ := c.Get(ctxOutcome).(string)
		if outcome == "" {
			code := c.Response().Status
			if err != nil {
				code = status(err)
			}
			switch {
			case code == http.StatusAccepted:
				outcome = deliveryAccepted
			case code < 300:
				outcome = deliveryIgnored
			case code < 500:
				outcome = deliveryRefused
			default:
				outcome = deliveryError
			}
		}
		s.d.DeliveryCounter.Delivery(provider, outcome)
		return err
	}
}
