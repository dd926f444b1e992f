package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
)

// Defaults for Options left zero. Together they bound how long one
// unreachable endpoint can hold its queue: 5 attempts of at most 10s with
// 1+2+4+8s between them is about a minute.
const (
	DefaultAttempts   = 5
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 30 * time.Second
	DefaultTimeout    = 10 * time.Second // per attempt; chat and status APIs answer in well under a second
	DefaultQueue      = 256              // calls waiting per worker; a burst of jobs across all projects fits
	DefaultWorkers    = 4                // one slow endpoint holds up only the calls that share its worker
	userAgent         = "swarmhook"
)

// Outcomes of a call, as given to a Recorder.
const (
	OutcomeDelivered = "delivered"
	OutcomeFailed    = "failed"
	OutcomeDropped   = "dropped"
)

// Kinds of call, as given to a Recorder.
const (
	KindSlack   = "slack"
	KindWebhook = "webhook"
	KindStatus  = "status"
)

// Recorder counts calls by kind and outcome, for metrics. It must be safe
// for concurrent use.
type Recorder interface {
	Notified(kind, outcome string)
}

// Options tune a Notifier; zero values take the defaults above.
type Options struct {
	// Client sends the calls; its Timeout is ignored in favour of Timeout.
	Client *http.Client
	// Attempts is how many times a call is tried.
	Attempts int
	// Backoff is the pause after the first failed attempt; it doubles
	// after each further one, up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// Timeout bounds each attempt.
	Timeout time.Duration
	// Queue is how many calls may wait per worker.
	Queue int
	// Workers is how many calls are sent at once. Calls to one URL always
	// go through the same worker, so they arrive in order.
	Workers int
	// Recorder counts outcomes; nil counts nothing.
	Recorder Recorder
	// Log receives a line per failed or dropped call.
	Log zerolog.Logger
}

// Notifier sends notifications and commit statuses for jobs. It is safe
// for concurrent use. Start it before jobs run and Shutdown it after the
// runner has stopped.
type Notifier struct {
	cfg *config.Config
	o   Options

	mu      sync.RWMutex
	closed  bool
	queues  []chan delivery
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
	started bool
}

// delivery is one call with what to say about it in logs.
type delivery struct {
	kind    string
	name    string // where it goes, without secrets: "slack[0] hooks.slack.com"
	project string
	job     int64
	call    call
}

// New returns a Notifier for cfg's projects.
func New(cfg *config.Config, o Options) *Notifier {
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	orDefault(&o.Attempts, DefaultAttempts)
	orDefault(&o.Backoff, DefaultBackoff)
	orDefault(&o.MaxBackoff, DefaultMaxBackoff)
	orDefault(&o.Timeout, DefaultTimeout)
	orDefault(&o.Queue, DefaultQueue)
	orDefault(&o.Workers, DefaultWorkers)
	n := &Notifier{cfg: cfg, o: o}
	for i := 0; i < o.Workers; i++ {
		n.queues = append(n.queues, make(chan delivery, o.Queue))
	}
	return n
}

// orDefault sets *v to def when it is zero or negative.
func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Start sets the workers going; they send until Shutdown. ctx bounds
// every call.
func (n *Notifier) Start(ctx context.Context) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started {
		return
	}
	n.started = true
	n.ctx, n.cancel = context.WithCancel(ctx)
	for _, q := range n.queues {
		n.wg.Add(1)
		go n.worker(q)
	}
}

// Shutdown takes no more calls and sends those queued until ctx is done;
// then it abandons the rest.
func (n *Notifier) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	for _, q := range n.queues {
		close(q)
	}
	started := n.started
	n.mu.Unlock()
	if !started {
		return nil
	}
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		n.cancel()
		return nil
	case <-ctx.Done():
		n.cancel()
		<-done
		return fmt.Errorf("notifications still queued at shutdown were dropped: %w", ctx.Err())
	}
}

// JobChanged queues the calls j's new state asks for. It never blocks:
// when a queue is full the call is dropped and counted.
func (n *Notifier) JobChanged(j *job.Job) {
	p, ok := n.cfg.Project(j.Project)
	if !ok {
		return
	}
	for _, d := range n.deliveries(p, j) {
		n.enqueue(d)
	}
}

// deliveries lists the calls for j's state under p's configuration.
func (n *Notifier) deliveries(p *config.Project, j *job.Job) []delivery {
	event := eventOf(j)
	if event == "" {
		return nil
	}
	link := JobURL(n.cfg.PublicURL, j.ID)
	var out []delivery
	add := func(kind, name string, c call) {
		out = append(out, delivery{kind: kind, name: name, project: p.Name, job: j.ID, call: c})
	}
	if s := p.Status; s != nil && j.Action == job.ActionBuild && j.Commit != "" {
		if state := statusState(s.Provider, event); state != "" {
			c, err := statusCall(s, j, state, link)
			if err != nil {
				n.o.Log.Error().Err(err).Str("project", p.Name).Int64("job", j.ID).Msg("commit status not sent")
			} else {
				add(KindStatus, string(s.Provider)+" status "+hostOf(s.APIURL), c)
			}
		}
	}
	if !p.Notify.Wants(event) {
		return out
	}
	if len(p.Notify.Slack) > 0 {
		body, _ := json.Marshal(map[string]string{"text": slackText(j, event, link)})
		for i, u := range p.Notify.Slack {
			add(KindSlack, fmt.Sprintf("slack[%d] %s", i, hostOf(u)), call{method: http.MethodPost, url: u, header: jsonHeader(), body: body})
		}
	}
	if len(p.Notify.Webhooks) > 0 {
		body, err := json.Marshal(Payload{Event: event, Text: summary(j, event), URL: link, Job: j})
		if err != nil {
			n.o.Log.Error().Err(err).Int64("job", j.ID).Msg("encode notification")
			return out
		}
		for i, w := range p.Notify.Webhooks {
			h := jsonHeader()
			h.Set("X-Swarmhook-Event", string(event))
			h.Set("X-Swarmhook-Delivery", fmt.Sprintf("%d-%s", j.ID, event))
			if w.Secret != "" {
				h.Set("X-Swarmhook-Signature", Sign(w.Secret, body))
			}
			add(KindWebhook, fmt.Sprintf("webhooks[%d] %s", i, hostOf(w.URL)), call{method: http.MethodPost, url: w.URL, header: h, body: body})
		}
	}
	return out
}

// Sign returns the X-Swarmhook-Signature value for body: sha256= and the
// hex HMAC-SHA256 of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func jsonHeader() http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", userAgent)
	return h
}

// hostOf is the part of a URL that may be logged: Slack-style webhook
// URLs carry their secret in the path.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	return u.Host
}

func (n *Notifier) enqueue(d delivery) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		n.dropped(d, "shutting down")
		return
	}
	h := fnv.New32a()
	h.Write([]byte(d.call.url))
	select {
	case n.queues[h.Sum32()%uint32(len(n.queues))] <- d:
	default:
		n.dropped(d, "queue full")
	}
}

func (n *Notifier) dropped(d delivery, why string) {
	n.o.Log.Warn().Str("project", d.project).Int64("job", d.job).Str("to", d.name).Str("reason", why).Msg("notification dropped")
	n.record(d.kind, OutcomeDropped)
}

func (n *Notifier) record(kind, outcome string) {
	if n.o.Recorder != nil {
		n.o.Recorder.Notified(kind, outcome)
	}
}

func (n *Notifier) worker(q <-chan delivery) {
	defer n.wg.Done()
	for d := range q {
		if n.ctx.Err() != nil {
			n.dropped(d, "shut down before it was sent")
			continue
		}
		if err := n.send(n.ctx, d); err != nil {
			n.o.Log.Warn().Err(err).Str("project", d.project).Int64("job", d.job).Str("to", d.name).Msg("notification failed")
			n.record(d.kind, OutcomeFailed)
			continue
		}
		n.record(d.kind, OutcomeDelivered)
	}
}

// errPermanent marks an answer that retrying cannot change.
var errPermanent = errors.New("not retried")

// send tries d until it is accepted, refused for good, or out of
// attempts.
func (n *Notifier) send(ctx context.Context, d delivery) error {
	wait := n.o.Backoff
	var err error
	for attempt := 1; ; attempt++ {
		err = n.attempt(ctx, d.call)
		if err == nil || errors.Is(err, errPermanent) || attempt >= n.o.Attempts {
			break
		}
		n.o.Log.Debug().Err(err).Str("to", d.name).Int("attempt", attempt).Dur("retry_in", wait).Msg("notification attempt failed")
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: gave up at shutdown after %d attempts: %w", d.name, attempt, err)
		case <-time.After(wait):
		}
		wait = min(wait*2, n.o.MaxBackoff)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", d.name, err)
	}
	return nil
}

// attempt makes one request. Network errors, 429 and 5xx are worth
// retrying; other refusals are not. Errors never carry the URL.
func (n *Notifier) attempt(ctx context.Context, c call) error {
	ctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, bytes.NewReader(c.body))
	if err != nil {
		return fmt.Errorf("build request: %w", errors.Join(errPermanent, withoutURL(err)))
	}
	req.Header = c.header.Clone()
	resp, err := n.o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("send: %w", withoutURL(err))
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("answered %d", resp.StatusCode)
	default:
		return fmt.Errorf("answered %d: %w", resp.StatusCode, errPermanent)
	}
}

// withoutURL drops the URL net/http puts in its errors: it may hold a
// secret.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
