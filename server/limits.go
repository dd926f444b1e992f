package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Bounds on what one client can hold of the server. Each is the default
// of a Limits field.
const (
	// readHeaderTimeout: a request's headers are a few hundred bytes;
	// a client that takes longer holds a connection for nothing.
	readHeaderTimeout = 10 * time.Second
	// readTimeout bounds reading a whole request, body included, so a
	// client that declares a large body and stalls is cut off. A webhook
	// body (at most webhook.max_body_bytes, 5 MB by default) arrives in
	// well under a second from a Git host.
	readTimeout = 30 * time.Second
	// writeTimeout bounds a request from its headers to the end of its
	// answer, so a client that never reads cannot hold a handler. It
	// covers readTimeout plus an upstream call (upstreamTimeout) with
	// room to spare. Streamed and late answers (followed logs, ?wait=1,
	// prunes) replace it with streamWriteTimeout per write.
	writeTimeout = 60 * time.Second
	// idleTimeout closes a keep-alive connection with no request on it;
	// scripts that poll reconnect for the price of a handshake.
	idleTimeout = 60 * time.Second
	// streamWriteTimeout bounds each write of a streamed answer: a
	// follower whose socket stays full that long is not reading and is
	// dropped. Lines of a job log come seconds apart, never minutes.
	streamWriteTimeout = 30 * time.Second
	// upstreamTimeout bounds a registry or Git host call made while a
	// request waits (tags, rollback to a tag, a branch head): past it
	// the answer is 504 naming the host, not a request that hangs.
	upstreamTimeout = 10 * time.Second
	// maxFollowersPerToken and maxFollowers cap GET /api/jobs/:id/log
	// ?follow=1 streams and actions with ?wait=1 at once. Each holds a connection, an open log
	// file, a 32 KB buffer and a store read every followPoll; a person
	// watches a deploy or two, a dashboard a handful.
	maxFollowersPerToken = 8
	maxFollowers         = 64
	// maxPlans caps POST /api/projects/{p}/plan at once: each checks a
	// branch out into data_dir and reads the Swarm, on a read token's
	// request; a person plans one at a time. Each also ends with the
	// write timeout, past which nobody could read its answer.
	maxPlans = 2
)

// Limits are the bounds above; a zero field takes its default. Tests set
// small ones.
type Limits struct {
	ReadHeaderTimeout  time.Duration
	ReadTimeout        time.Duration
	WriteTimeout       time.Duration
	IdleTimeout        time.Duration
	StreamWriteTimeout time.Duration
	UpstreamTimeout    time.Duration
	// FollowersPerToken and Followers cap followed job logs and
	// actions with ?wait=1, per API token and in all.
	FollowersPerToken int
	Followers         int
}

// withDefaults fills the zero fields.
func (l Limits) withDefaults() Limits {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, readHeaderTimeout)
	def(&l.ReadTimeout, readTimeout)
	def(&l.WriteTimeout, writeTimeout)
	def(&l.IdleTimeout, idleTimeout)
	def(&l.StreamWriteTimeout, streamWriteTimeout)
	def(&l.UpstreamTimeout, upstreamTimeout)
	if l.FollowersPerToken == 0 {
		l.FollowersPerToken = maxFollowersPerToken
	}
	if l.Followers == 0 {
		l.Followers = maxFollowers
	}
	return l
}

// HTTPServer returns an http.Server serving s with the server's read,
// write and idle bounds; the caller gives it a listener.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.limits.ReadHeaderTimeout,
		ReadTimeout:       s.limits.ReadTimeout,
		WriteTimeout:      s.limits.WriteTimeout,
		IdleTimeout:       s.limits.IdleTimeout,
	}
}

// streamWriter writes a long answer. Each write gets a deadline of its
// own in place of the server's WriteTimeout and is flushed, so a client
// that reads slowly keeps its stream and one that stops reading is
// dropped after timeout.
type streamWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (s *Server) stream(w http.ResponseWriter) *streamWriter {
	return &streamWriter{w: w, rc: http.NewResponseController(w), timeout: s.limits.StreamWriteTimeout}
}

// Write writes p and flushes it, within the write timeout.
func (sw *streamWriter) Write(p []byte) (int, error) {
	if err := sw.extend(); err != nil {
		return 0, err
	}
	n, err := sw.w.Write(p)
	if err != nil {
		return n, err
	}
	return n, sw.rc.Flush()
}

// extend gives the next write the full timeout from now. A writer
// without deadlines (a test's recorder) needs none.
func (sw *streamWriter) extend() error {
	if err := sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// lateAnswer gives an answer that comes after a long wait (?wait=1, a
// prune) a write deadline of its own: the server's WriteTimeout has been
// running since the request arrived.
func (s *Server) lateAnswer(c echo.Context) {
	s.stream(c.Response()).extend()
}
