package tagpolicy

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

var validTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

func TestBranchComponent(t *testing.T) {
	long := strings.Repeat("a", 200)
	tests := []struct {
		name, branch, want string
		err                error
	}{
		{name: "plain", branch: "main", want: "main"},
		{name: "slash and case", branch: "feature/Login", want: "feature-login"},
		{name: "leading dot and dash trimmed", branch: ".-x", want: "x"},
		{name: "unicode replaced", branch: "fix/ümlaut", want: "fix--mlaut"},
		{name: "keeps dots and underscores", branch: "release_1.2", want: "release_1.2"},
		{name: "nothing usable", branch: "///", err: ErrEmptyBranch},
		{name: "empty", branch: "", err: ErrEmptyBranch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BranchComponent(tt.branch)
			if !errors.Is(err, tt.err) {
				t.Fatalf("BranchComponent(%q) error = %v, want %v", tt.branch, err, tt.err)
			}
			if got != tt.want {
				t.Errorf("BranchComponent(%q) = %q, want %q", tt.branch, got, tt.want)
			}
		})
	}

	t.Run("long names stay valid and distinct", func(t *testing.T) {
		a, err := BranchComponent(long + "x")
		if err != nil {
			t.Fatal(err)
		}
		b, err := BranchComponent(long + "y")
		if err != nil {
			t.Fatal(err)
		}
		if a == b {
			t.Errorf("two long branches share component %q", a)
		}
		for _, c := range []string{a, b} {
			tag := Timestamped(c, time.Now())
			if !validTag.MatchString(tag) {
				t.Errorf("tag %q (len %d) is not a valid Docker tag", tag, len(tag))
			}
		}
	})
}

func TestTimestampedRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 15, 0, 0, time.FixedZone("CET", 3600))
	tag := Timestamped("feature-a-b", at)
	if tag != "feature-a-b-20261126091500" {
		t.Fatalf("Timestamped = %q", tag)
	}
	comp, got, ok := ParseTimestamped(tag)
	if !ok || comp != "feature-a-b" || !got.Equal(at) {
		t.Errorf("ParseTimestamped(%q) = %q, %v, %v", tag, comp, got, ok)
	}
}

func TestParseTimestampedRejects(t *testing.T) {
	for _, tag := range []string{"main-latest", "latest", "v1.2.3", "main-2026112609150", "main20261126091500", "-20261126091500", "main-20261326091500", "main-2026112609150x"} {
		if _, _, ok := ParseTimestamped(tag); ok {
			t.Errorf("ParseTimestamped(%q) accepted a tag outside the scheme", tag)
		}
	}
}

func TestLatest(t *testing.T) {
	if got := Latest("main"); got != "main-latest" || !IsLatest(got) {
		t.Errorf("Latest(main) = %q", got)
	}
	if IsLatest("main-20261126091500") {
		t.Error("timestamped tag reported as latest")
	}
}

func TestNextTimestamp(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := NextTimestamp(base.Add(1500*time.Millisecond), base); !got.Equal(base.Add(time.Second)) {
		t.Errorf("later second: got %v", got)
	}
	if got := NextTimestamp(base.Add(300*time.Millisecond), base); !got.Equal(base.Add(time.Second)) {
		t.Errorf("same second: got %v, want bumped", got)
	}
	if got := NextTimestamp(base, time.Time{}); !got.Equal(base) {
		t.Errorf("first build: got %v", got)
	}
}
