package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// HTTP limits of the listener (see HTTP).
const (
	// readTimeout bounds reading one request, headers and body; a Git
	// host sends a delivery in well under a second.
	readTimeout = 30 * time.Second
	// idleTimeout is how long a kept-alive connection may wait for its
	// next request.
	idleTimeout = 2 * time.Minute
	// readBufferSize bounds a request's line and headers together.
	readBufferSize = 16 << 10
)

// HTTP serves a Server on a listening address, as an http.Server would
// serve ServeHTTP.
//
// Webhook deliveries (POST /hooks/{project}) are taken on fasthttp
// directly: net/http spends about twice fasthttp's CPU on each request
// (among other things a goroutine and a read that waits for the next
// request, started and stopped for every request); at 5,000 deliveries
// a second that was about 15 of the 200 µs a delivery cost
// (bench/README.md, Intake). Every other route is echo's, exactly as
// ServeHTTP serves it, through fasthttp's net/http adaptor.
type HTTP struct {
	srv *fasthttp.Server
}

// HTTP returns the server that serves s.
func (s *Server) HTTP() *HTTP { return &HTTP{srv: s.fastServer()} }

// ListenAndServe listens on the TCP address addr and serves until
// Shutdown, which makes it return nil.
func (h *HTTP) ListenAndServe(addr string) error { return h.srv.ListenAndServe(addr) }

// Serve serves on ln until Shutdown, which makes it return nil.
func (h *HTTP) Serve(ln net.Listener) error { return h.srv.Serve(ln) }

// Shutdown stops taking connections and returns once the requests in
// flight are answered, or with ctx's error when it ends first.
func (h *HTTP) Shutdown(ctx context.Context) error { return h.srv.ShutdownWithContext(ctx) }

func (s *Server) fastServer() *fasthttp.Server {
	api := fasthttpadaptor.NewFastHTTPHandler(s)
	return &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if project, ok := hookRoute(ctx); ok {
				s.fastHook(ctx, project)
				return
			}
			api(ctx)
		},
		ErrorHandler:       s.fastError,
		Logger:             fastLogger{s},
		MaxRequestBodySize: int(s.d.Config.Webhook.MaxBodyBytes),
		ReadBufferSize:     readBufferSize,
		ReadTimeout:        readTimeout,
		IdleTimeout:        idleTimeout,
		// Its error log lines quote requests, which may carry secrets.
		SecureErrorLogMessage: true,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		CloseOnShutdown:       true,
	}
}

// hookRoute tells a delivery, POST /hooks/{project}, and its project.
// Anything else, /hooks/ with another method or more path, is echo's to
// answer.
func hookRoute(ctx *fasthttp.RequestCtx) (string, bool) {
	if !ctx.IsPost() {
		return "", false
	}
	project, ok := strings.CutPrefix(string(ctx.Path()), "/hooks/")
	if !ok || project == "" || strings.Contains(project, "/") {
		return "", false
	}
	return project, true
}

// fastHook is the fast route for deliveries: what hook does for echo,
// with the same answers, log lines and counts.
func (s *Server) fastHook(ctx *fasthttp.RequestCtx, project string) {
	start := time.Now()
	header := fastHeader{&ctx.Request.Header}
	// Not ctx: fasthttp cancels it when the server stops, and a delivery
	// taken in is finished either way, its answer being what the host
	// goes by.
	res, err := s.takeDelivery(context.Background(), inbound{
		project: project, header: header, remote: ctx.RemoteIP().String(),
		// fasthttp read the body within MaxRequestBodySize before the
		// handler ran, or refused it (fastError).
		body: func(int64) ([]byte, error) { return ctx.PostBody(), nil },
	})
	code := res.code
	var body any = res.answer
	if err != nil {
		var msg string
		code, msg = errorAnswer(s.d.Log, err, "/hooks/:project")
		body = errorBody{msg}
		if errors.Is(err, errRateLimited) {
			ctx.Response.Header.Set("Retry-After", retryAfter)
		}
	}
	writeJSON(ctx, code, body)
	s.count(res.provider, header, res.outcome, code)
	s.d.Log.Info().Str("method", http.MethodPost).Str("path", "/hooks/"+project).
		Int("status", code).Dur("took", time.Since(start)).Msg("request")
}

// fastError answers a request fasthttp could not read: too large,
// malformed, or too slow. Deliveries among them are counted as refused.
// A chunked body cut off at the limit comes here with its request
// already reset by fasthttp: its route unknown, it is answered and
// logged but not counted (Git hosts declare their bodies' length).
func (s *Server) fastError(ctx *fasthttp.RequestCtx, err error) {
	code, msg := http.StatusBadRequest, "malformed HTTP request"
	var timeout interface{ Timeout() bool }
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		// As readBody says it: a declared length is refused unread, an
		// undeclared one once the limit is passed.
		code = http.StatusRequestEntityTooLarge
		limit := s.d.Config.Webhook.MaxBodyBytes
		if n := ctx.Request.Header.ContentLength(); n > 0 {
			msg = fmt.Sprintf("%s: %d bytes declared, the limit is %d", errTooLarge, n, limit)
		} else {
			msg = fmt.Sprintf("%s: the limit is %d bytes", errTooLarge, limit)
		}
	case errors.As(err, &small):
		code, msg = http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("request headers are over %d bytes", readBufferSize)
	case errors.As(err, &timeout) && timeout.Timeout():
		code, msg = http.StatusRequestTimeout, "request not read in time"
	}
	writeJSON(ctx, code, errorBody{msg})
	ev := s.d.Log.Info()
	if len(ctx.Request.Header.RequestURI()) > 0 { // not reset
		if _, ok := hookRoute(ctx); ok {
			s.count("", fastHeader{&ctx.Request.Header}, deliveryRefused, code)
		}
		ev = ev.Str("method", string(ctx.Method())).Str("path", string(ctx.Path()))
	}
	ev.Int("status", code).Str("error", msg).Msg("request")
}

// writeJSON answers v as compact JSON, as echo's c.JSON does.
func writeJSON(ctx *fasthttp.RequestCtx, code int, v any) {
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	b, err := json.Marshal(v)
	if err != nil { // answers are plain structs: never
		b = []byte(`{"error":"internal error"}`)
	}
	ctx.Write(append(b, '\n'))
}

// fastHeader reads a fasthttp request's headers for webhook.Parse.
type fastHeader struct{ h *fasthttp.RequestHeader }

// Get returns the first value of the named header.
func (f fastHeader) Get(name string) string { return string(f.h.Peek(name)) }

// fastLogger takes fasthttp's own error lines (connections that broke)
// into the log at debug level: they are the client's trouble, not ours.
type fastLogger struct{ s *Server }

// Printf logs one line.
func (l fastLogger) Printf(format string, args ...any) {
	l.s.d.Log.Debug().Msgf("http: "+format, args...)
}
