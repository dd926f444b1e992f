package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinel errors; the HTTP layer maps each to a status.
var (
	// ErrSignature means the delivery's signature is missing or wrong.
	ErrSignature = errors.New("webhook: signature missing or invalid")
	// ErrUnsigned means the project has no secret and does not allow
	// unsigned deliveries.
	ErrUnsigned = errors.New("webhook: project has no secret; unsigned deliveries are refused")
	// ErrMalformed means the body or a field in it cannot be used.
	ErrMalformed = errors.New("webhook: malformed delivery")
	// ErrUnknownProvider means no header says which Git host sent it.
	ErrUnknownProvider = errors.New("webhook: no known event header")
)

// Kind says what a delivery asks for.
type Kind string

// Delivery kinds.
const (
	// KindPush is a branch or tag push that may start a job.
	KindPush Kind = "push"
	// KindPing is a test delivery sent when a hook is set up.
	KindPing Kind = "ping"
	// KindIgnored is any other event: acknowledged, nothing done.
	KindIgnored Kind = "ignored"
)

// Delivery is a verified, decoded webhook delivery.
type Delivery struct {
	// Provider names the Git host, e.g. "github".
	Provider string
	// ID is the host's delivery id, used to drop redeliveries; may be empty.
	ID string
	// Kind says what the delivery is.
	Kind Kind
	// Event is the host's own event name, for logs and ignore reasons.
	Event string
	// Pushes holds one entry per changed ref for KindPush.
	Pushes []Push
}

// Push is one ref update, the same whatever host sent it.
type Push struct {
	// Ref is the full ref, refs/heads/main or refs/tags/v1.
	Ref string
	// Name is the branch or tag name, without refs/heads/ or refs/tags/.
	Name string
	// IsTag is true for refs/tags/ pushes.
	IsTag bool
	// Before and After are the commits before and after the push.
	Before, After string
	// Deleted is true when the ref was removed.
	Deleted bool
	// CloneURL is where the host says the repository is; informational,
	// swarmhook always fetches from the configured URL.
	CloneURL string
	// Pusher is who pushed, as the host names them.
	Pusher string
	// HeadMessage is the head commit's message.
	HeadMessage string
}

// Parse verifies and decodes a delivery. secret is the project's webhook
// secret; an empty secret refuses the delivery unless allowUnsigned.
func Parse(h http.Header, body []byte, secret string, allowUnsigned bool) (Delivery, error) {
	switch {
	case h.Get("X-GitHub-Event") != "":
		if err := verify(secret, allowUnsigned, func() bool { return validHexHMAC(body, secret, "sha256=", h.Get("X-Hub-Signature-256")) }); err != nil {
			return Delivery{}, err
		}
		return parseGitHub(h, body)
	}
	return Delivery{}, ErrUnknownProvider
}

// verify applies the common secret policy around a provider's check.
func verify(secret string, allowUnsigned bool, check func() bool) error {
	if secret == "" {
		if allowUnsigned {
			return nil
		}
		return ErrUnsigned
	}
	if !check() {
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

// Sign returns the "sha256=<hex>" signature of body, as GitHub sends it.
// Tests and the generic trigger format use it.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// splitRef turns refs/heads/x or refs/tags/x into its name and kind.
func splitRef(ref string) (name string, isTag bool, err error) {
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		name = strings.TrimPrefix(ref, "refs/heads/")
	case strings.HasPrefix(ref, "refs/tags/"):
		name, isTag = strings.TrimPrefix(ref, "refs/tags/"), true
	default:
		return "", false, fmt.Errorf("%w: ref %q is neither refs/heads/ nor refs/tags/", ErrMalformed, ref)
	}
	if err := ValidRefName(name); err != nil {
		return "", false, err
	}
	return name, isTag, nil
}

// ValidRefName checks a branch or tag name against Git's ref-format rules,
// so a name from outside can never carry a path escape or control
// characters into a tag, a file name or a log.
func ValidRefName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w: ref name %q %s", ErrMalformed, name, why) }
	switch {
	case name == "" || len(name) > 255:
		return bad("must be 1 to 255 characters")
	case strings.HasPrefix(name, "-") || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/"):
		return bad("must not start with '-' or '/' or end with '/'")
	case strings.Contains(name, "..") || strings.Contains(name, "//") || strings.Contains(name, "@{"):
		return bad("must not contain '..', '//' or '@{'")
	case strings.HasSuffix(name, ".lock") || strings.HasSuffix(name, ".") || name == "@":
		return bad("must not end with '.lock' or '.'")
	}
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") {
			return bad("has a component starting with '.'")
		}
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return bad("contains a character Git forbids")
		}
	}
	return nil
}

// ValidCommit checks a full hex commit id (SHA-1 or SHA-256).
func ValidCommit(sha string) error {
	if len(sha) != 40 && len(sha) != 64 {
		return fmt.Errorf("%w: commit %q is not a full hex id", ErrMalformed, sha)
	}
	if _, err := hex.DecodeString(sha); err != nil {
		return fmt.Errorf("%w: commit %q is not a full hex id", ErrMalformed, sha)
	}
	return nil
}

// zeroCommit reports an all-zero id, which hosts send for deleted refs.
func zeroCommit(sha string) bool {
	return sha != "" && strings.Trim(sha, "0") == ""
}
