package chatops

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxSkew is how far a request's X-Slack-Request-Timestamp may be from
// now, either way: Slack's own recommendation, so a captured request
// cannot be replayed later.
const MaxSkew = 5 * time.Minute

// Errors of Verify; each means the request starts nothing.
var (
	// ErrUnsigned: no signature or timestamp header.
	ErrUnsigned = errors.New("chatops: request is not signed")
	// ErrSignature: the signature does not match the body.
	ErrSignature = errors.New("chatops: signature does not match")
	// ErrStale: the timestamp is more than MaxSkew from now.
	ErrStale = errors.New("chatops: request timestamp is too old or too new")
)

// Sign returns the X-Slack-Signature of body sent at timestamp: "v0="
// and the hex HMAC-SHA256 of "v0:{timestamp}:{body}" under secret.
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "v0:%s:", timestamp)
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a request's X-Slack-Signature against its raw body and
// that its X-Slack-Request-Timestamp is within MaxSkew of now. The
// signature is compared in constant time, and no error says what the
// expected one was.
//
// slack-go's SecretsVerifier does the same but reads the clock itself,
// so Slack's documented example (from 2018) could not be checked with
// it; this takes now from the caller.
func Verify(secret string, h http.Header, body []byte, now time.Time) error {
	sig, ts := h.Get("X-Slack-Signature"), h.Get("X-Slack-Request-Timestamp")
	if sig == "" || ts == "" {
		return ErrUnsigned
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: X-Slack-Request-Timestamp is not a number", ErrUnsigned)
	}
	if d := now.Sub(time.Unix(sec, 0)).Abs(); d > MaxSkew {
		return fmt.Errorf("%w: sent %s from now, more than %s", ErrStale, d.Round(time.Second), MaxSkew)
	}
	given, ok := strings.CutPrefix(sig, "v0=")
	if !ok {
		return fmt.Errorf("%w: not a v0 signature", ErrSignature)
	}
	want := Sign(secret, ts, body)[len("v0="):]
	if !hmac.Equal([]byte(strings.ToLower(given)), []byte(want)) {
		return ErrSignature
	}
	return nil
}
