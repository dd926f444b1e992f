package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// attempts is go-containerregistry's retry predicate for one call: it
// decides which errors are transient, keeps each request within the
// schedule's attempts, and writes every attempt that failed to log. The
// library may call it from several goroutines (it pings http and https
// side by side).
type attempts struct {
	ctx      context.Context
	what     string
	log      io.Writer
	schedule remote.Backoff

	mu       sync.Mutex
	requests map[string]*requestAttempts
	order    []string
	gaveUp   int
}

// requestAttempts is what attempts knows of one request.
type requestAttempts struct {
	failed int
	// pauses is the library's schedule for this request: its next
	// Step is the pause before the next attempt.
	pauses remote.Backoff
}

// retry reports whether the request that failed with err is tried again.
func (a *attempts) retry(err error) bool {
	if err == nil || !IsTransient(err) || a.ctx.Err() != nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	key := requestOf(err)
	r, ok := a.requests[key]
	if !ok {
		r = &requestAttempts{pauses: a.schedule}
		a.requests[key] = r
		a.order = append(a.order, key)
	}
	r.failed++
	if r.failed >= a.schedule.Steps {
		a.gaveUp = r.failed
		return false
	}
	fmt.Fprintf(a.log, "%s: attempt %d of %d failed with a transient error, retrying in %s: %v\n",
		a.what, r.failed, a.schedule.Steps, r.pauses.Step(), err)
	return true
}

// done finishes the call with err: a request that needed more than one
// attempt and got through says so in the log, and an error after the
// last attempt says how many there were.
func (a *attempts) done(err error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		for _, key := range a.order {
			if r := a.requests[key]; r.failed > 0 && r.failed < a.schedule.Steps {
				fmt.Fprintf(a.log, "%s: attempt %d of %d succeeded\n", a.what, r.failed+1, a.schedule.Steps)
			}
		}
		return nil
	}
	if a.gaveUp > 1 {
		return fmt.Errorf("%s: gave up after %d attempts: %w", a.what, a.gaveUp, err)
	}
	return err
}

// requestOf names the request err is about, where err says: a registry's
// answer carries its request, a failed round trip its URL. Errors that
// name none share one count.
func requestOf(err error) string {
	var te *transport.Error
	if errors.As(err, &te) && te.Request != nil {
		return te.Request.Method + " " + te.Request.URL.String()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + " " + ue.URL
	}
	return ""
}
