package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// name checks a service, project or environment name before it becomes
// a path segment: a '/' or a dot segment would reach another endpoint.
func name(what, v string) (string, error) {
	if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/?#") {
		return "", fmt.Errorf("%s %q: not a name", what, v)
	}
	return url.PathEscape(v), nil
}

// Jobs lists jobs newest first (GET /api/jobs).
func (c *Client) Jobs(ctx context.Context, f JobFilter) ([]Job, error) {
	q := url.Values{}
	for k, v := range map[string]string{"project": f.Project, "branch": f.Branch, "status": f.Status, "service": f.Service} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Before > 0 {
		q.Set("before", pathID(f.Before))
	}
	var out struct {
		Jobs []Job `json:"jobs"`
	}
	err := c.call(ctx, http.MethodGet, "/api/jobs", q, nil, &out)
	return out.Jobs, err
}

// Job reads one job (GET /api/jobs/{id}).
func (c *Client) Job(ctx context.Context, id int64) (*Job, error) {
	var j Job
	if err := c.call(ctx, http.MethodGet, "/api/jobs/"+pathID(id), nil, nil, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// Log copies a job's log to w (GET /api/jobs/{id}/log); with follow it
// streams until the job ends.
func (c *Client) Log(ctx context.Context, id int64, follow bool, w io.Writer) error {
	q := url.Values{}
	if follow {
		q.Set("follow", "1")
	}
	resp, err := c.request(ctx, http.MethodGet, "/api/jobs/"+pathID(id)+"/log", q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("read log of job %d: %w", id, err)
	}
	return nil
}

// Services lists every managed service's state (GET /api/services).
func (c *Client) Services(ctx context.Context) ([]Service, error) {
	var out struct {
		Services []Service `json:"services"`
	}
	err := c.call(ctx, http.MethodGet, "/api/services", nil, nil, &out)
	return out.Services, err
}

// Tags lists a service's rollback candidates (GET /api/services/{s}/tags).
func (c *Client) Tags(ctx context.Context, service string) (*Tags, error) {
	s, err := name("service", service)
	if err != nil {
		return nil, err
	}
	var t Tags
	if err := c.call(ctx, http.MethodGet, "/api/services/"+s+"/tags", nil, nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Rollback rolls service back to tag, or to Swarm's previous spec when
// tag is empty, and returns the job.
func (c *Client) Rollback(ctx context.Context, service, tag string) (int64, error) {
	s, err := name("service", service)
	if err != nil {
		return 0, err
	}
	var body any
	if tag != "" {
		body = map[string]string{"tag": tag}
	}
	return c.action(ctx, "/api/services/"+s+"/rollback", body)
}

// Deploy builds branch's head of project, or with tag deploys that tag
// without a build, and returns the job.
func (c *Client) Deploy(ctx context.Context, project, branch, tag string) (int64, error) {
	p, err := name("project", project)
	if err != nil {
		return 0, err
	}
	body := map[string]string{"branch": branch}
	if tag != "" {
		body["tag"] = tag
	}
	return c.action(ctx, "/api/projects/"+p+"/deploy", body)
}

// Redeploy restarts service's tasks on the same digest.
func (c *Client) Redeploy(ctx context.Context, service string) (int64, error) {
	s, err := name("service", service)
	if err != nil {
		return 0, err
	}
	return c.action(ctx, "/api/services/"+s+"/redeploy", nil)
}

// Scale sets service's replica count.
func (c *Client) Scale(ctx context.Context, service string, replicas uint64) (int64, error) {
	s, err := name("service", service)
	if err != nil {
		return 0, err
	}
	return c.action(ctx, "/api/services/"+s+"/scale", map[string]uint64{"replicas": replicas})
}

// Promote deploys to environment to the digests that run in from, for
// project (POST /api/projects/{p}/promote).
func (c *Client) Promote(ctx context.Context, project, from, to string) (int64, error) {
	p, err := name("project", project)
	if err != nil {
		return 0, err
	}
	return c.action(ctx, "/api/projects/"+p+"/promote", map[string]string{"from": from, "to": to})
}

// Approve lets a job waiting for approval go on (POST
// /api/jobs/{id}/approve); Reject ends it (…/reject).
func (c *Client) Approve(ctx context.Context, id int64) error {
	return c.call(ctx, http.MethodPost, "/api/jobs/"+pathID(id)+"/approve", nil, nil, nil)
}

// Reject ends a job waiting for approval.
func (c *Client) Reject(ctx context.Context, id int64) error {
	return c.call(ctx, http.MethodPost, "/api/jobs/"+pathID(id)+"/reject", nil, nil, nil)
}

// FreezeDeploys stops deploys to a target until a time (POST
// /api/freeze) and returns the server's answer as it sent it.
func (c *Client) FreezeDeploys(ctx context.Context, f Freeze) (map[string]any, error) {
	var out map[string]any
	err := c.call(ctx, http.MethodPost, "/api/freeze", nil, f, &out)
	return out, err
}

// Wait reads the job every poll interval until it ends, and returns it
// as it ended. It gives up, with ctx's error, when ctx ends; an answer
// that will not change (4xx: the job is gone, the token refused) is an
// error at once, while a failed connection or a 5xx is tried again, so a
// server restart does not fail a wait.
func (c *Client) Wait(ctx context.Context, id int64) (*Job, error) {
	for {
		j, err := c.Job(ctx, id)
		var apiErr *Error
		switch {
		case err == nil && j.Final():
			return j, nil
		case errors.As(err, &apiErr) && apiErr.Status < 500, err != nil && ctx.Err() != nil:
			return nil, fmt.Errorf("wait for job %d: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for job %d: %w", id, ctx.Err())
		case <-time.After(c.poll):
		}
	}
}
