package server

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/swarmhook/swarmhook/engines"
)

// readyTimeout bounds all readiness checks together: a load balancer
// polls /readyz every few seconds and must get an answer before its own
// timeout.
const readyTimeout = 3 * time.Second

// Check is one readiness probe: the engine answers, the registry answers
// /v2/, the store takes writes.
type Check struct {
	// Name says what is checked, in the 503 answer.
	Name string
	// Probe returns nil when the dependency is usable. It must honour
	// ctx and be safe to call from several requests at once.
	Probe func(ctx context.Context) error
}

// readyAnswer is the body of /readyz: each check's result, and the names
// of the failed ones.
type readyAnswer struct {
	Status string            `json:"status"`
	Failed []string          `json:"failed,omitempty"`
	Checks map[string]string `json:"checks"`
	// Warnings are the failed Deps.Warn checks.
	Warnings []string `json:"warnings,omitempty"`
	// Engines are the build engines' states (Deps.Engines).
	Engines []engines.State `json:"engines,omitempty"`
}

// EngineStates tells the state of each build engine. Safe for
// concurrent use.
type EngineStates interface {
	States() []engines.State
}

// readyz runs every check at once and answers 200 when all Ready checks
// pass, or 503 naming what failed. Failed Warn checks are named under
// warnings either way.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
	defer cancel()
	a := readyAnswer{Status: "ok", Checks: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, ch := range slices.Concat(s.d.Ready, s.d.Warn) {
		failed := &a.Failed
		if i >= len(s.d.Ready) {
			failed = &a.Warnings
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := ch.Probe(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				a.Checks[ch.Name] = err.Error()
				*failed = append(*failed, ch.Name)
				return
			}
			a.Checks[ch.Name] = "ok"
		}()
	}
	wg.Wait()
	if s.d.Engines != nil {
		a.Engines = s.d.Engines.States()
	}
	slices.Sort(a.Warnings)
	if len(a.Failed) > 0 {
		slices.Sort(a.Failed)
		a.Status = "unavailable: " + strings.Join(a.Failed, ", ")
		s.d.Log.Warn().Strs("failed", a.Failed).Msg("not ready")
		return c.JSON(http.StatusServiceUnavailable, a)
	}
	return c.JSON(http.StatusOK, a)
}
