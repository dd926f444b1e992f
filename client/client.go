package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls one swarmhook server with one bearer token. It is safe
// for concurrent use.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
	// poll is how often Wait reads a running job.
	poll time.Duration
}

// DefaultPoll is how often Wait reads a job that has not ended: often
// enough that a person waiting sees the end at once, rarely enough that a
// script waiting for a long build costs the server nothing.
const DefaultPoll = time.Second

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// Option changes a Client.
type Option func(*Client)

// WithHTTPClient sends requests through h instead of
// http.DefaultClient's transport (no overall timeout: logs are followed
// and jobs waited for as long as they run).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithPoll sets how often Wait reads a running job.
func WithPoll(d time.Duration) Option { return func(c *Client) { c.poll = d } }

// New returns a client of the server at baseURL (http:// or https://,
// with or without a path prefix) that sends token as its bearer token.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		// url.Parse's error quotes the URL, password and all.
		return nil, errors.New("server URL: not a URL: want http(s)://host[:port]")
	}
	if u.User != nil {
		return nil, fmt.Errorf("server URL %s: give the token as SWARMHOOK_TOKEN or -token-file, not in the URL", u.Redacted())
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http(s)://host[:port]", baseURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	c := &Client{base: u, token: token, http: &http.Client{}, poll: DefaultPoll}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Error is an answer of the API other than 2xx: its status and the
// server's "error" text.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("server answered %d: %s", e.Status, e.Message)
}

// ErrNotFound is matched (errors.Is) by an Error with status 404.
var ErrNotFound = errors.New("client: not found")

// Is makes errors.Is(err, ErrNotFound) hold for a 404.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// request sends one API call and returns the answer, which the caller
// closes; a non-2xx answer is an *Error (its body read and closed).
func (c *Client) request(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e struct {
		Error string `json:"error"`
	}
	apiErr := &Error{Status: resp.StatusCode}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		apiErr.Message = e.Error
	}
	return nil, fmt.Errorf("%s %s: %w", method, path, apiErr)
}

// call sends one API call and decodes its JSON answer into out (nil
// discards it).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.request(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	return nil
}

// started is the answer of an action: {"job": ID}.
type started struct {
	Job int64 `json:"job"`
}

// action posts body to path and returns the ID of the job it started.
func (c *Client) action(ctx context.Context, path string, body any) (int64, error) {
	var s started
	if err := c.call(ctx, http.MethodPost, path, nil, body, &s); err != nil {
		return 0, err
	}
	if s.Job == 0 {
		return 0, fmt.Errorf("POST %s: the answer names no job", path)
	}
	return s.Job, nil
}

func pathID(id int64) string { return strconv.FormatInt(id, 10) }
