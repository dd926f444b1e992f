package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/store"
)

// followPoll is how often a followed log is checked for new lines.
const followPoll = 200 * time.Millisecond

// listJobs answers GET /api/jobs?project=&branch=&status=&service=&before=&limit=
// newest first; the next page is ?before=<last id>.
func (s *Server) listJobs(c echo.Context) error {
	q := c.QueryParams()
	f := store.Filter{Project: q.Get("project"), Branch: q.Get("branch"), Service: q.Get("service"), Status: job.Status(q.Get("status"))}
	for name, dst := range map[string]*int64{"before": &f.Before} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("%w: %s=%q is not a number", errBadRequest, name, v)
			}
			*dst = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return fmt.Errorf("%w: limit=%q must be 1 to 500", errBadRequest, v)
		}
		f.Limit = n
	}
	jobs, err := s.d.Store.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	for i, j := range jobs {
		jobs[i] = s.newest(j)
	}
	return writeJobs(c.Response(), jobs)
}

// writeJobs answers {"jobs": [...]} one job at a time. Encoding the whole
// page at once would build a buffer of up to 500 jobs, several MB that
// the Go runtime keeps long after the request: idle memory is a goal
// (bench/README.md, "Idle memory").
func writeJobs(w *echo.Response, jobs []*job.Job) error {
	w.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, `{"jobs":[`); err != nil {
		return nil // the client left
	}
	enc := json.NewEncoder(w)
	for i, j := range jobs {
		if i > 0 {
			io.WriteString(w, ",")
		}
		if err := enc.Encode(j); err != nil {
			return nil
		}
	}
	io.WriteString(w, "]}\n")
	return nil
}

// getLog answers GET /api/jobs/:id/log with the job's log as text. With
// ?follow=1 it streams new lines as they are written until the job ends,
// so a user can watch a deploy happen with curl. Followers are capped per
// token and in all (Limits); every write has a deadline of its own
// (Limits.StreamWriteTimeout), so a client that stops reading is dropped.
func (s *Server) getLog(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := jobID(c)
	if err != nil {
		return err
	}
	j, err := s.d.Store.Get(ctx, id)
	if err != nil {
		return err
	}
	follow := c.QueryParam("follow") == "1" || c.QueryParam("follow") == "true"
	if follow && !j.Status.Final() {
		who, _ := c.Get("who").(string)
		release, err := s.followers.acquire(who)
		if err != nil {
			return err
		}
		defer release()
	}
	rc, err := s.d.Logs.Open(id)
	if err != nil {
		return err
	}
	defer rc.Close()
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	sw := s.stream(w)
	if !follow || j.Status.Final() {
		io.Copy(sw, rc)
		return nil
	}
	return s.follow(ctx, id, rc, sw)
}

// follow copies r to w as it grows, until the job is final and the log
// read to its end, or the client goes away or stops reading.
func (s *Server) follow(ctx context.Context, id int64, r io.Reader, w io.Writer) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the client left or stopped reading
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		// At the end of what is written: done if the job is.
		j, err := s.d.Store.Get(ctx, id)
		if err != nil {
			return nil
		}
		if j.Status.Final() {
			io.Copy(w, r) // lines written between the last read and the end
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(followPoll):
		}
	}
}
