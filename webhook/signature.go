package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SignatureTolerance is how far a signed timestamp (GitLab signing
// tokens, after the Standard Webhooks spec) may be from the time of
// receipt: the spec's recommended five minutes, enough for clock skew and
// a host's own retries, short enough that a captured delivery cannot be
// replayed later.
const SignatureTolerance = 5 * time.Minute

// signingTokenPrefix marks a Standard Webhooks signing key, as GitLab
// shows it: whsec_ followed by the base64 of the key.
const signingTokenPrefix = "whsec_"

// hexHMAC checks a "<prefix><hex HMAC-SHA256 of body>" signature header.
func hexHMAC(body []byte, secret, prefix, got string) error {
	if got == "" {
		return fmt.Errorf("%w: no signature header", ErrSignature)
	}
	if !validHexHMAC(body, secret, prefix, got) {
		return ErrSignature
	}
	return nil
}

// validHexHMAC checks a "<prefix><hex HMAC-SHA256 of body>" signature in
// constant time. The expected MAC never leaves this function.
func validHexHMAC(body []byte, secret, prefix, got string) bool {
	hexSig, ok := strings.CutPrefix(got, prefix)
	if !ok {
		return false
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil || len(sig) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(sig, mac.Sum(nil))
}

// Sign returns the "sha256=<hex>" signature of body, as GitHub, Bitbucket
// and the generic format send it. Tests and triggering scripts use it.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// validToken compares a plain token (GitLab's X-Gitlab-Token) with the
// secret in constant time, over hashes so the length leaks nothing either.
func validToken(secret, got string) bool {
	want := sha256.Sum256([]byte(secret))
	have := sha256.Sum256([]byte(got))
	return got != "" && hmac.Equal(want[:], have[:])
}

// standardWebhook checks a Standard Webhooks signature, as GitLab sends
// it for a hook with a signing token: webhook-signature holds one or more
// space-separated "v1,<base64 HMAC-SHA256>" of "<webhook-id>.<webhook-
// timestamp>.<body>", keyed with the base64-decoded part of whsec_<key>.
func standardWebhook(h http.Header, body []byte, secret string, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if sigs == "" {
		return fmt.Errorf("%w: no webhook-signature header", ErrSignature)
	}
	if id == "" {
		// The id is what the delivery is known by (see parseGitLab).
		return fmt.Errorf("%w: no webhook-id header", ErrSignature)
	}
	key, err := signingKey(secret)
	if err != nil {
		return err
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: webhook-timestamp is not a Unix time", ErrSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > SignatureTolerance || d < -SignatureTolerance {
		return fmt.Errorf("%w: webhook-timestamp is more than %s from now", ErrSignature, SignatureTolerance)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		if sig, err := base64.StdEncoding.Strict().DecodeString(b64); err == nil && hmac.Equal(sig, want) {
			return nil
		}
	}
	return ErrSignature
}

// signingKey decodes a whsec_ signing token into its key bytes.
func signingKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, signingTokenPrefix)
	if !ok {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		// Says nothing of the secret itself.
		return nil, fmt.Errorf("%w: the project's whsec_ signing token is not valid base64", ErrSignature)
	}
	return key, nil
}

// SignStandard returns the webhook-signature header value for body, as
// GitLab computes it for a hook with signing token secret (whsec_...).
func SignStandard(secret, id string, at time.Time, body []byte) (string, error) {
	key, err := signingKey(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(at.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}
