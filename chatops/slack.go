package chatops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
)

// Defaults of Options.
const (
	// DefaultAckWithin is how long a command may take before the answer
	// is only "working on it" and the result is posted later: Slack shows
	// an error for answers after 3 s.
	DefaultAckWithin = 2 * time.Second
	// DefaultFollowFor is how long a job is followed for its result:
	// Slack's response URLs work for 30 minutes.
	DefaultFollowFor = 30 * time.Minute
)

// Options are a Slack handler's optional collaborators.
type Options struct {
	Log zerolog.Logger
	// Now is the clock for the timestamp check; time.Now when nil.
	Now func() time.Time
	// HTTP posts to response URLs; a client with a 10 s timeout when
	// nil. Redirects are never followed.
	HTTP *http.Client
	// AckWithin and FollowFor: see DefaultAckWithin, DefaultFollowFor.
	AckWithin, FollowFor time.Duration
	// ErrorText says an action's error to the user; err.Error() when nil
	// (the server hides its internal errors' details).
	ErrorText func(error) string
}

// Slack answers Slack's slash commands and block actions. It is safe for
// concurrent use.
type Slack struct {
	cfg       *config.Slack
	actions   Actions
	respond   *responder
	log       zerolog.Logger
	now       func() time.Time
	ackWithin time.Duration
	followFor time.Duration
	errorText func(error) string
	seen      seen
}

// NewSlack returns the handler of cfg's users, running their commands
// through a.
func NewSlack(cfg *config.Slack, a Actions, o Options) (*Slack, error) {
	r, err := newResponder(cfg.ResponseURLs, o.HTTP)
	if err != nil {
		return nil, err
	}
	s := &Slack{cfg: cfg, actions: a, respond: r, log: o.Log, now: o.Now, ackWithin: o.AckWithin, followFor: o.FollowFor, errorText: o.ErrorText}
	if s.now == nil {
		s.now = time.Now
	}
	if s.ackWithin <= 0 {
		s.ackWithin = DefaultAckWithin
	}
	if s.followFor <= 0 {
		s.followFor = DefaultFollowFor
	}
	if s.errorText == nil {
		s.errorText = func(err error) string { return err.Error() }
	}
	return s, nil
}

// outcome is what a command's run came to.
type outcome struct {
	reply reply
	err   error
}

// Handle verifies one request (header and raw body) and runs it. It
// returns the answer to send at once (HTTP 200, within Slack's 3 s), or
// an error when the request is refused and starts nothing: ErrUnsigned,
// ErrSignature, ErrStale, ErrReplay, ErrMalformed or ErrResponseURL. Users the
// config does not list, unknown commands, missing scopes and wrong
// arguments are answered, to the user alone, saying so.
//
// A command still running after AckWithin is answered "working on it"
// and its answer posted to the response URL; a command that started or
// continued a job has the job's end posted there too, in the channel.
// ctx is the request's; the command runs on past it, for at most
// FollowFor.
func (s *Slack) Handle(ctx context.Context, h http.Header, body []byte) (*slack.WebhookMessage, error) {
	now := s.now()
	if err := Verify(s.cfg.SigningSecret, h, body, now); err != nil {
		return nil, err
	}
	// Verify checked both headers: a verified signature is its hex MAC
	// in any case, so it is remembered in lower case.
	ts, _ := strconv.ParseInt(h.Get("X-Slack-Request-Timestamp"), 10, 64)
	if !s.seen.first(strings.ToLower(h.Get("X-Slack-Signature")), time.Unix(ts, 0), now) {
		return nil, ErrReplay
	}
	req, err := ParseRequest(body)
	if err != nil {
		return nil, err
	}
	if err := s.respond.check(req.ResponseURL); err != nil {
		s.log.Warn().Str("slack_user", req.User).Err(err).Msg("slack request refused")
		return nil, err
	}
	user, ok := s.user(req)
	if !ok {
		s.log.Warn().Str("slack_user", req.User).Str("slack_team", req.Team).Msg("slack user not in chat.slack.users")
		return message(ephemeral, fmt.Sprintf("You (%s) may not run swarmhook commands: an operator can add you under chat.slack.users.", req.User)), nil
	}
	if len(req.Words) == 0 || req.Words[0] == "help" {
		return message(ephemeral, help(user)), nil
	}
	cmd, ok := lookup(req.Words[0])
	if !ok {
		return message(ephemeral, fmt.Sprintf("Unknown command %q.\n%s", req.Words[0], help(user))), nil
	}
	if !user.Has(cmd.scope) {
		return message(ephemeral, fmt.Sprintf("%s needs the %q scope, which %s does not have.", cmd.name, cmd.scope, user.Who())), nil
	}
	args, err := cmd.bind(req.Words[1:])
	if err != nil {
		return message(ephemeral, "Usage: "+cmd.usage()), nil
	}
	log := s.log.With().Str("slack_user", req.User).Str("who", user.Who()).Str("command", cmd.name).Logger()
	log.Info().Strs("args", args).Msg("slack command")

	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.followFor)
	ho := &handoff{done: make(chan outcome, 1)}
	go func() {
		defer cancel()
		r, err := cmd.run(bg, s.actions, user.Who(), args)
		if o := (outcome{r, err}); !ho.give(o) {
			if err := s.respond.post(bg, req.ResponseURL, s.answer(o)); err != nil {
				log.Warn().Err(err).Msg("slack answer not posted")
			}
		}
		if err == nil && r.job != 0 {
			s.follow(bg, log, req.ResponseURL, user.Who(), r.job)
		}
	}()
	timer := time.NewTimer(s.ackWithin)
	defer timer.Stop()
	select {
	case o := <-ho.done:
		return s.answer(o), nil
	case <-timer.C:
		if o, ok := ho.giveUp(); ok {
			return s.answer(o), nil
		}
		return message(ephemeral, fmt.Sprintf("Working on it: %s.", cmd.name)), nil
	}
}

// handoff passes a command's outcome to the request still waiting for
// it, or tells the command that nobody waits any more and it must post
// the outcome itself: exactly one of the two answers.
type handoff struct {
	mu   sync.Mutex
	late bool
	done chan outcome // buffered: give never blocks
}

// give hands o to the waiting request; false when it gave up waiting.
func (h *handoff) give(o outcome) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.late {
		return false
	}
	h.done <- o
	return true
}

// giveUp stops waiting, unless the outcome has just arrived.
func (h *handoff) giveUp() (outcome, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case o := <-h.done:
		return o, true
	default:
		h.late = true
		return outcome{}, false
	}
}

// user finds the config's entry of who sent req.
func (s *Slack) user(req Request) (config.SlackUser, bool) {
	for _, u := range s.cfg.Users {
		if u.ID == req.User && (u.Team == "" || u.Team == req.Team) {
			return u, true
		}
	}
	return config.SlackUser{}, false
}

// answer is the user's own message of what a command came to.
func (s *Slack) answer(o outcome) *slack.WebhookMessage {
	if o.err != nil {
		if errors.Is(o.err, errUsage) {
			return message(ephemeral, o.err.Error())
		}
		return message(ephemeral, "Refused: "+s.errorText(o.err))
	}
	text := o.reply.text
	if o.reply.job != 0 {
		text += " The result will be posted here when it ends."
	}
	m := message(ephemeral, text)
	m.Blocks = o.reply.blocks
	return m
}

// follow waits for job id, started by who, to end and posts its result
// to the channel; one it cannot follow is said to the user.
func (s *Slack) follow(ctx context.Context, log zerolog.Logger, responseURL, who string, id int64) {
	j, err := s.actions.Wait(ctx, who, id)
	if err != nil {
		log.Warn().Err(err).Int64("job", id).Msg("slack: job not followed to its end")
		text := fmt.Sprintf("Job %d is not followed here: %s. Ask with /deploy status %d.", id, s.errorText(err), id)
		if err := s.respond.post(context.WithoutCancel(ctx), responseURL, message(ephemeral, text)); err != nil {
			log.Warn().Err(err).Int64("job", id).Msg("slack answer not posted")
		}
		return
	}
	text := jobText(j)
	switch {
	case j.Status == job.Waiting:
		// Wait ends as soon as a job waits: an approval, a window or a
		// freeze may take hours, longer than a response URL lasts.
		text += fmt.Sprintf("\nIt waits; its end is not posted here: ask with /deploy status %d.", id)
	case !j.Status.Final():
		text += fmt.Sprintf("\nStill %s after %s; ask again with /deploy status %d.", j.Status, s.followFor, id)
	}
	m := message(inChannel, text)
	if s.actions.AwaitsApproval(j) {
		b := ApprovalBlocks(text, id)
		m.Blocks = &b
	}
	if err := s.respond.post(context.WithoutCancel(ctx), responseURL, m); err != nil {
		log.Warn().Err(err).Int64("job", id).Msg("slack result not posted")
	}
}
