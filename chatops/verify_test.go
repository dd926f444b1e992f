package chatops

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Slack's example in "Verifying requests from Slack".
const (
	docSecret    = "8f742231b10e8888abcd99yyyzzz85a5"
	docTimestamp = "1531420618"
	docBody      = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	docSignature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

var docTime = time.Unix(1531420618, 0)

func headers(sig, ts string) http.Header {
	h := http.Header{}
	if sig != "" {
		h.Set("X-Slack-Signature", sig)
	}
	if ts != "" {
		h.Set("X-Slack-Request-Timestamp", ts)
	}
	return h
}

func TestSlackDocumentedSignatureVector(t *testing.T) {
	if got := Sign(docSecret, docTimestamp, []byte(docBody)); got != docSignature {
		t.Fatalf("Sign = %s, want Slack's %s", got, docSignature)
	}
	if err := Verify(docSecret, headers(docSignature, docTimestamp), []byte(docBody), docTime.Add(30*time.Second)); err != nil {
		t.Fatalf("Slack's own example refused: %v", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    http.Header
		body string
		now  time.Time
		want error
	}{
		{"no headers", headers("", ""), docBody, docTime, ErrUnsigned},
		{"no timestamp", headers(docSignature, ""), docBody, docTime, ErrUnsigned},
		{"timestamp not a number", headers(docSignature, "yesterday"), docBody, docTime, ErrUnsigned},
		{"older than 5 minutes", headers(docSignature, docTimestamp), docBody, docTime.Add(5*time.Minute + time.Second), ErrStale},
		{"more than 5 minutes ahead", headers(docSignature, docTimestamp), docBody, docTime.Add(-5*time.Minute - time.Second), ErrStale},
		{"body changed", headers(docSignature, docTimestamp), strings.Replace(docBody, "roadrunner", "coyote", 1), docTime, ErrSignature},
		{"timestamp changed", headers(docSignature, "1531420619"), docBody, docTime, ErrSignature},
		{"other secret", headers(Sign("another-secret", docTimestamp, []byte(docBody)), docTimestamp), docBody, docTime, ErrSignature},
		{"not v0", headers("v1="+docSignature[3:], docTimestamp), docBody, docTime, ErrSignature},
		{"truncated", headers(docSignature[:20], docTimestamp), docBody, docTime, ErrSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(docSecret, tt.h, []byte(tt.body), tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), docSignature[3:13]) || strings.Contains(err.Error(), docSecret) {
				t.Errorf("error reveals the expected signature or the secret: %v", err)
			}
		})
	}
}

// FuzzParseRequest: no body makes the parser panic.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(docBody))
	f.Add([]byte("payload=" + `{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"approve","block_id":"b","value":"42"}]}`))
	f.Add([]byte("payload=%7B"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseRequest(body)
		if err == nil && r.User == "" {
			t.Errorf("request without a user accepted: %+v", r)
		}
	})
}
