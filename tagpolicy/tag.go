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

	// LatestSuffix ends the moving tag that names what runs now.
	LatestSuffix = "-latest"

	// maxTagLen is the longest tag the distribution spec allows.
	maxTagLen = 128

	// maxBranchLen leaves room for "-" plus the 14-digit timestamp, the
	// longest suffix a branch component ever gets.
	maxBranchLen = maxTagLen - 1 - len(TimestampLayout)

	// hashLen is how many hex digits of the branch's hash end a truncated
	// component, so two long branches with one prefix still differ.
	hashLen = 8
)

// ErrEmptyBranch is returned when a branch name has no character that can
// stand in a tag.
var ErrEmptyBranch = errors.New("tagpolicy: branch name has no usable characters")

// BranchComponent turns a Git branch (or Git tag) name into the branch part
// of an image tag: lower case, every character outside [a-z0-9._-] replaced
// by '-', no leading '.' or '-', and short enough that the timestamped tag
// stays within 128 characters. "feature/Login" becomes "feature-login".
// Names too long are cut and end in a hash of the full name so they stay
// distinct.
func BranchComponent(branch string) (string, error) {
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
	if len(s) > maxBranchLen {
		sum := sha256.Sum256([]byte(branch))
		s = s[:maxBranchLen-hashLen-1] + "-" + hex.EncodeToString(sum[:])[:hashLen]
	}
	return s, nil
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
