package tagpolicy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

const (
	// TimestampLayout is the layout of the timestamp in <branch>-<timestamp>
	// tags: UTC, to the second, so tags sort in time order as strings.
	TimestampLayout = "20060102150405"

	// LatestSuffix ends the moving tag that names what the branch's
	// services run.
	LatestSuffix = "-latest"

	// maxTagLen is the longest tag the distribution spec allows.
	maxTagLen = 128

	// maxBranchLen leaves room for "-" plus the 14-digit timestamp, the
	// longest suffix a branch component ever gets.
	maxBranchLen = maxTagLen - 1 - len(TimestampLayout)

	// HashLen is how many hex digits of the SHA-256 of the real branch
	// name end the component of a branch that cannot stand in a tag as it
	// is: 80 bits, so that choosing a branch name whose component equals
	// another branch's (a second preimage) is out of reach of a pusher.
	HashLen = 20
)

// ErrEmptyBranch is returned when a branch name has no character that can
// stand in a tag.
var ErrEmptyBranch = errors.New("tagpolicy: branch name has no usable characters")

// BranchComponent turns a Git branch (or Git tag) name into the branch part
// of an image tag. Distinct names always give distinct components, so one
// branch's builds can never take another's tags, -latest or retention.
//
// A readable name (see Readable), such as "main" or "release-1.2", is its
// own component. Any other name is sanitised (lower case, every character
// outside [a-z0-9._-] replaced by '-', no leading '.' or '-', cut to fit)
// and ends in '-' and HashLen hex digits of the SHA-256 of the name as
// given: "feature/Login" becomes "feature-login-<hash>", and "Main"
// becomes "main-<hash>", not "main". A readable name never ends in that
// shape (Readable refuses it), so the two kinds can never meet.
func BranchComponent(branch string) (string, error) {
	if Readable(branch) {
		return branch, nil
	}
	var b strings.Builder
	for _, r := range strings.ToLower(branch) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := strings.TrimLeft(b.String(), ".-")
	if strings.Trim(s, "-._") == "" {
		return "", fmt.Errorf("%w: %q", ErrEmptyBranch, branch)
	}
	s = s[:min(len(s), maxBranchLen-1-HashLen)]
	sum := sha256.Sum256([]byte(branch))
	return s + "-" + hex.EncodeToString(sum[:])[:HashLen], nil
}

// Readable reports whether a branch name is its own tag component: only
// [a-z0-9._-], at least one letter or digit, no leading '.' or '-', short
// enough for the timestamped tag, and not itself shaped like a tag of the
// scheme or like a hashed component: it does not end in "-latest", in
// "-<timestamp>" or in "-<HashLen hex digits>". Those shapes are left to
// the tags themselves and to hashed components, so that every tag parses
// back to the one branch that made it.
func Readable(branch string) bool {
	if branch == "" || len(branch) > maxBranchLen || branch[0] == '.' || branch[0] == '-' {
		return false
	}
	alnum := false
	for i := 0; i < len(branch); i++ {
		switch c := branch[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			alnum = true
		case c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	if !alnum || IsLatest(branch) || hashed(branch) {
		return false
	}
	_, _, stamped := ParseTimestamped(branch)
	return !stamped
}

// hashed reports whether component ends in '-' and HashLen lower-case hex
// digits, the shape BranchComponent gives names that are not Readable.
func hashed(component string) bool {
	n := len(component) - HashLen
	if n < 1 || component[n-1] != '-' {
		return false
	}
	for i := n; i < len(component); i++ {
		if c := component[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Timestamped returns the rollback tag <component>-<UTC timestamp> for a
// build started at t.
func Timestamped(component string, t time.Time) string {
	return component + "-" + t.UTC().Format(TimestampLayout)
}

// Latest returns the moving tag <component>-latest.
func Latest(component string) string {
	return component + LatestSuffix
}

// IsLatest reports whether tag is a moving -latest tag.
func IsLatest(tag string) bool {
	return strings.HasSuffix(tag, LatestSuffix)
}

// ParseTimestamped splits a <component>-<timestamp> tag. The timestamp is
// read from the end because branch components may contain dashes. ok is
// false for any tag outside the scheme.
func ParseTimestamped(tag string) (component string, at time.Time, ok bool) {
	n := len(TimestampLayout)
	if len(tag) < n+2 || tag[len(tag)-n-1] != '-' {
		return "", time.Time{}, false
	}
	stamp := tag[len(tag)-n:]
	for i := 0; i < n; i++ {
		if stamp[i] < '0' || stamp[i] > '9' {
			return "", time.Time{}, false
		}
	}
	at, err := time.Parse(TimestampLayout, stamp)
	if err != nil {
		return "", time.Time{}, false
	}
	return tag[:len(tag)-n-1], at, true
}

// NextTimestamp returns now truncated to the second, or one second after
// last when now is not later than it, so two builds of one branch in the
// same second never share a rollback tag.
func NextTimestamp(now, last time.Time) time.Time {
	t := now.UTC().Truncate(time.Second)
	if !t.After(last) {
		t = last.UTC().Truncate(time.Second).Add(time.Second)
	}
	return t
}
