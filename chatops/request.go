package chatops

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/slack-go/slack"
)

// ErrMalformed is a verified request swarmhook cannot read.
var ErrMalformed = errors.New("chatops: malformed request")

// Request is what a verified Slack request asks: a slash command, or a
// button pressed in one of swarmhook's messages.
type Request struct {
	// Team and User are Slack's IDs of who asked.
	Team, User string
	// Words are the command and its arguments, as typed
	// ("rollback shop_api main-20261126101500") or as a button says it
	// ("approve 42").
	Words []string
	// ResponseURL is where later answers go; the sender chose it.
	ResponseURL string
	// Button is true for a pressed button.
	Button bool
}

// ParseRequest reads a verified request body: a slash command
// (form-encoded fields) or a block action (a form field "payload"
// holding JSON). Slack's own types from slack-go read both.
func ParseRequest(body []byte) (Request, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return Request{}, fmt.Errorf("%w: body is not form-encoded: %v", ErrMalformed, err)
	}
	if p := form.Get("payload"); p != "" {
		return parseInteraction(p)
	}
	r, _ := http.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	cmd, err := slack.SlashCommandParse(r)
	if err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if cmd.UserID == "" || cmd.Command == "" {
		return Request{}, fmt.Errorf("%w: a slash command needs user_id and command", ErrMalformed)
	}
	return Request{Team: cmd.TeamID, User: cmd.UserID, Words: strings.Fields(cmd.Text), ResponseURL: cmd.ResponseURL}, nil
}

// parseInteraction reads a block_actions payload: the first action's
// action_id is the command and its value the argument (approve, 42).
func parseInteraction(payload string) (Request, error) {
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(payload), &cb); err != nil {
		return Request{}, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if cb.Type != slack.InteractionTypeBlockActions {
		return Request{}, fmt.Errorf("%w: interaction type %q; only block_actions are taken", ErrMalformed, cb.Type)
	}
	acts := cb.ActionCallback.BlockActions
	if len(acts) == 0 || cb.User.ID == "" {
		return Request{}, fmt.Errorf("%w: block_actions without an action or a user", ErrMalformed)
	}
	team := cb.Team.ID
	if team == "" {
		team = cb.User.TeamID
	}
	return Request{Team: team, User: cb.User.ID, Words: []string{acts[0].ActionID, acts[0].Value}, ResponseURL: cb.ResponseURL, Button: true}, nil
}
