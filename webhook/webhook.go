package webhook

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"
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

// maxDeliveryID bounds a delivery id: every host's id is a UUID or a
// short hash, and the id is stored and logged.
const maxDeliveryID = 128

// Delivery is a verified, decoded webhook delivery.
type Delivery struct {
	// Provider names the Git host: github, gitlab, gitea, forgejo, gogs,
	// bitbucket or generic.
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
	// Before and After are the ref's values before and after the push, as
	// the host sent them. For an annotated tag After may name the tag
	// object rather than a commit.
	Before, After string
	// Commit is the commit to build: After, or the tagged commit when the
	// host names it. Empty only when Deleted.
	Commit string
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

// Policy says how one project's deliveries are verified.
type Policy struct {
	// Secret is the project's webhook secret: the HMAC key for hosts that
	// sign, the token for GitLab. A GitLab signing token (whsec_...) makes
	// GitLab deliveries checked by their webhook-signature header instead.
	Secret string
	// AllowUnsigned accepts deliveries without any check when Secret is
	// empty. Without it an empty Secret refuses every delivery.
	AllowUnsigned bool
	// Now is when the delivery arrived; signed timestamps are checked
	// against it.
	Now time.Time
}

// verify applies the common secret policy around a provider's check.
func (p Policy) verify(check func() error) error {
	if p.Secret == "" {
		if p.AllowUnsigned {
			return nil
		}
		return ErrUnsigned
	}
	return check()
}

// Parse verifies and decodes a delivery. The provider is told by the
// headers; a request with none of the known event headers is read in the
// generic format. The signature is checked before the body is decoded.
func Parse(h http.Header, body []byte, p Policy) (Delivery, error) {
	var d Delivery
	var err error
	switch {
	case h.Get("X-Forgejo-Event") != "":
		d, err = parseGitea(forgejo, h, body, p)
	case h.Get("X-Gitea-Event") != "":
		d, err = parseGitea(gitea, h, body, p)
	case h.Get("X-Gogs-Event") != "":
		d, err = parseGitea(gogs, h, body, p)
	case h.Get("X-GitHub-Event") != "":
		d, err = parseGitHub(h, body, p)
	case h.Get("X-Gitlab-Event") != "":
		d, err = parseGitLab(h, body, p)
	case h.Get("X-Event-Key") != "":
		d, err = parseBitbucket(h, body, p)
	default:
		d, err = parseGeneric(h, body, p)
	}
	if err != nil {
		return Delivery{}, err
	}
	if err := validDeliveryID(d.ID); err != nil {
		return Delivery{}, err
	}
	return d, nil
}

// kindOf says what a host's event asks for: ping is its name for a test
// delivery ("" when it has none), pushes its names for push events;
// anything else is ignored.
func kindOf(event, ping string, pushes ...string) Kind {
	switch {
	case ping != "" && event == ping:
		return KindPing
	case slices.Contains(pushes, event):
		return KindPush
	default:
		return KindIgnored
	}
}

// validDeliveryID keeps ids from outside short and printable.
func validDeliveryID(id string) error {
	if len(id) > maxDeliveryID {
		return fmt.Errorf("%w: delivery id is longer than %d characters", ErrMalformed, maxDeliveryID)
	}
	for _, r := range id {
		if r <= 0x20 || r >= 0x7f {
			return fmt.Errorf("%w: delivery id %q has a character outside printable ASCII", ErrMalformed, id)
		}
	}
	return nil
}

// errTrailing is a body with more after its JSON value.
var errTrailing = errors.New("unexpected data after the JSON value")

// decodeJSON unmarshals body into v, saying what is wrong and where when
// it cannot. strict refuses fields v does not have.
func decodeJSON(what string, body []byte, v any, strict bool) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%w: %s: body is empty", ErrMalformed, what)
	}
	var err error
	if strict {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err = dec.Decode(v); err == nil && dec.More() {
			err = errTrailing
		}
	} else {
		// Unmarshal checks the whole body, trailing data included,
		// without a Decoder and its buffer: this runs on every delivery.
		err = json.Unmarshal(body, v)
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &syntax) && syntax.Error() == "unexpected end of JSON input":
		return fmt.Errorf("%w: %s is truncated JSON", ErrMalformed, what)
	case errors.Is(err, errTrailing) || errors.As(err, &syntax) && strings.Contains(syntax.Error(), "after top-level value"):
		return fmt.Errorf("%w: %s: %v", ErrMalformed, what, errTrailing)
	case errors.As(err, &syntax):
		return fmt.Errorf("%w: %s is not valid JSON at byte %d: %v", ErrMalformed, what, syntax.Offset, syntax)
	case errors.As(err, &typ):
		return fmt.Errorf("%w: %s: field %q is a JSON %s, want %s", ErrMalformed, what, typ.Field, typ.Value, kindName(typ.Type))
	default:
		return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
}

// kindName says what JSON a Go type wants, for error messages.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Pointer:
		return kindName(t.Elem())
	default:
		return "a number"
	}
}

// normalize builds the Push every provider shares and validates what
// later stages rely on. commit is the commit to build when the host names
// one apart from after (a tag's target); "" means after.
func normalize(ref, before, after, commit string, deleted bool) (Push, error) {
	name, isTag, err := splitRef(ref)
	if err != nil {
		return Push{}, err
	}
	p := Push{Ref: ref, Name: name, IsTag: isTag, Before: before, After: after, Deleted: deleted || zeroCommit(after)}
	if p.Deleted {
		return p, nil
	}
	p.Commit = after
	if commit != "" && !zeroCommit(commit) {
		p.Commit = commit
	}
	if err := ValidCommit(p.Commit); err != nil {
		return Push{}, err
	}
	return p, nil
}

// splitRef turns refs/heads/x or refs/tags/x into its name and kind.
func splitRef(ref string) (name string, isTag bool, err error) {
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		name = strings.TrimPrefix(ref, "refs/heads/")
	case isTagRef(ref):
		name, isTag = strings.TrimPrefix(ref, "refs/tags/"), true
	default:
		return "", false, fmt.Errorf("%w: ref %q is neither refs/heads/ nor refs/tags/", ErrMalformed, ref)
	}
	if err := ValidRefName(name); err != nil {
		return "", false, err
	}
	return name, isTag, nil
}

// isTagRef reports a refs/tags/ ref.
func isTagRef(ref string) bool { return strings.HasPrefix(ref, "refs/tags/") }

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

// commitInfo is the id and message of a commit in a payload's list.
type commitInfo struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

// messageOf returns the message of commit id in commits, or of the last
// one when id is not among them (hosts list commits oldest first).
func messageOf(commits []commitInfo, id string) string {
	for _, c := range commits {
		if c.ID == id {
			return c.Message
		}
	}
	if len(commits) > 0 {
		return commits[len(commits)-1].Message
	}
	return ""
}
