package tagpolicy

import (
	"crypto/sha256"
	"encoding/hex"
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
		{name: "keeps dots and underscores", branch: "release_1.2", want: "release_1.2"},
		{name: "dashes and digits", branch: "release-2026-11", want: "release-2026-11"},
		{name: "slash and case", branch: "feature/Login", want: "feature-login-" + hashOf("feature/Login")},
		{name: "upper case is not main", branch: "Main", want: "main-" + hashOf("Main")},
		{name: "slash is not dash", branch: "feature/x", want: "feature-x-" + hashOf("feature/x")},
		{name: "leading dot and dash trimmed", branch: ".-x", want: "x-" + hashOf(".-x")},
		{name: "unicode replaced", branch: "fix/ümlaut", want: "fix--mlaut-" + hashOf("fix/ümlaut")},
		{name: "ends like a timestamped tag", branch: "main-20261203101500", want: "main-20261203101500-" + hashOf("main-20261203101500")},
		{name: "ends like a latest tag", branch: "main-latest", want: "main-latest-" + hashOf("main-latest")},
		{name: "ends like a hashed component", branch: "main-0123456789abcdef0123", want: "main-0123456789abcdef0123-" + hashOf("main-0123456789abcdef0123")},
		{name: "short hex tail stays", branch: "fix-0123abcd", want: "fix-0123abcd"},
		{name: "nothing usable", branch: "///", err: ErrEmptyBranch},
		{name: "only punctuation", branch: "_", err: ErrEmptyBranch},
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

func hashOf(branch string) string {
	sum := sha256.Sum256([]byte(branch))
	return hex.EncodeToString(sum[:])[:HashLen]
}

// collisions are the pairs issue 18 names and their kin: every pair was
// one component before, and must be two now.
var collisions = [][]string{
	{"main", "Main", "MAIN", "mAin", ".main", "-main", "main/"},
	{"feature/x", "feature-x", "feature_x", "feature.x", "Feature/X", "feature//x", "feature\\x", "feature x", "feature\xffx"},
	{"fix/ümlaut", "fix/ömlaut", "fix--mlaut", "fix/-mlaut"},
	{"main", "main-20261203101500", "main-latest"},
	{strings.Repeat("a", 120), strings.Repeat("a", 121), strings.Repeat("a", 113), strings.Repeat("a", 112)},
}

func TestBranchComponentNeverShared(t *testing.T) {
	for _, group := range collisions {
		seen := map[string]string{}
		for _, b := range group {
			c, err := BranchComponent(b)
			if err != nil {
				t.Fatalf("BranchComponent(%q): %v", b, err)
			}
			if other, ok := seen[c]; ok {
				t.Errorf("branches %q and %q share component %q", other, b, c)
			}
			seen[c] = b
			checkComponent(t, b, c)
		}
	}
}

// TestTagsParseBackToTheirBranch: a tag of a branch that ends like a
// timestamp, or like main's -latest, is never read as main's.
func TestTagsParseBackToTheirBranch(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 15, 0, 0, time.UTC)
	for _, b := range []string{"main-20261203101500", "main-latest", "main-20261203101500-20261203101500", "Main"} {
		c, err := BranchComponent(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range []string{Timestamped(c, at), Latest(c)} {
			if comp, _, ok := ParseTimestamped(tag); ok && comp == "main" || tag == "main-latest" {
				t.Errorf("branch %q made tag %q, which reads as main's", b, tag)
			}
		}
		if comp, _, _ := ParseTimestamped(Timestamped(c, at)); comp != c {
			t.Errorf("branch %q: tag %q parses to component %q, want %q", b, Timestamped(c, at), comp, c)
		}
	}
}

// checkComponent holds what every component of branch must satisfy: it is
// the branch itself exactly when the branch is Readable; otherwise it ends
// in the hash of the branch and is not Readable, so no branch maps to it
// unchanged; and its tags are valid and parse back to it.
func checkComponent(t *testing.T, branch, c string) {
	t.Helper()
	if Readable(branch) != (c == branch) {
		t.Errorf("BranchComponent(%q) = %q, but Readable says %v", branch, c, Readable(branch))
	}
	if c != branch {
		if !strings.HasSuffix(c, "-"+hashOf(branch)) {
			t.Errorf("BranchComponent(%q) = %q does not end in the branch's hash", branch, c)
		}
		if Readable(c) {
			t.Errorf("hashed component %q of %q is Readable: the branch %q would take it", c, branch, c)
		}
	}
	at := time.Date(2026, 12, 3, 10, 15, 0, 0, time.UTC)
	tag := Timestamped(c, at)
	if !validTag.MatchString(tag) || !validTag.MatchString(Latest(c)) {
		t.Errorf("tags %q, %q of %q are not valid Docker tags", tag, Latest(c), branch)
	}
	if comp, got, ok := ParseTimestamped(tag); !ok || comp != c || !got.Equal(at) {
		t.Errorf("ParseTimestamped(%q) = %q, %v, %v; want %q", tag, comp, got, ok, c)
	}
	if _, _, ok := ParseTimestamped(c); ok || IsLatest(c) {
		t.Errorf("component %q of %q is itself shaped like a tag", c, branch)
	}
}

// FuzzBranchComponent: distinct branch names never share a component,
// and every component keeps checkComponent's promises.
func FuzzBranchComponent(f *testing.F) {
	for _, group := range collisions {
		for i := 1; i < len(group); i++ {
			f.Add(group[0], group[i])
		}
	}
	f.Add("release/1.2", "release-1.2")
	f.Add("a-0123456789abcdef0123", "a")
	f.Fuzz(func(t *testing.T, a, b string) {
		ca, errA := BranchComponent(a)
		cb, errB := BranchComponent(b)
		if errA == nil {
			checkComponent(t, a, ca)
		}
		if errB == nil {
			checkComponent(t, b, cb)
		}
		if errA == nil && errB == nil && a != b && ca == cb {
			t.Errorf("branches %q and %q share component %q", a, b, ca)
		}
		// The component, taken as a branch name, maps to itself only if
		// it is the branch: a hashed component is never a readable name.
		if errA == nil && ca != a {
			if again, err := BranchComponent(ca); err == nil && again == ca {
				t.Errorf("branch %q and branch %q both map to %q", a, ca, ca)
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
