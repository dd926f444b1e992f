package webhook

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Fixed values the tests share.
const (
	sha    = "a10867b14bb761a232cd80139fbd4c0d33264240"
	secret = "topsecret"
)

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func policy(secret string) Policy { return Policy{Secret: secret, Now: now} }

// headers builds a header set from name/value pairs.
func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// parseCase is one delivery and what Parse should make of it.
type parseCase struct {
	name    string
	header  http.Header
	body    []byte
	policy  Policy
	wantErr error
	// errHas is text the error must contain, so it names the problem.
	errHas string
	want   *Delivery
}

func runParseCases(t *testing.T, tests []parseCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(tt.header, tt.body, tt.policy)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("error %q does not say %q", err, tt.errHas)
			}
			if tt.want != nil {
				if diff := cmp.Diff(*tt.want, d); diff != "" {
					t.Errorf("delivery (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestGitHubDocumentedSignatureVector(t *testing.T) {
	// From GitHub's "Validating webhook deliveries" documentation.
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	body := []byte("Hello, World!")
	if got := Sign("It's a Secret to Everybody", body); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if !validHexHMAC(body, "It's a Secret to Everybody", "sha256=", want) {
		t.Error("documented signature rejected")
	}
	h := headers("X-GitHub-Event", "ping", "X-Hub-Signature-256", want)
	if d, err := Parse(h, body, policy("It's a Secret to Everybody")); err != nil || d.Kind != KindPing {
		t.Errorf("Parse of the documented vector = %+v, %v", d, err)
	}
}

func TestSecretPolicy(t *testing.T) {
	body := []byte(`{"branch":"main","commit":"` + sha + `"}`)
	tests := []struct {
		name    string
		pol     Policy
		sig     string
		wantErr error
	}{
		{"no secret refuses", Policy{}, "", ErrUnsigned},
		{"no secret refuses even a signature", Policy{}, Sign("", body), ErrUnsigned},
		{"allow unsigned", Policy{AllowUnsigned: true}, "", nil},
		{"secret needs a signature", Policy{Secret: "k"}, "", ErrSignature},
		{"secret wins over allow unsigned", Policy{Secret: "k", AllowUnsigned: true}, "", ErrSignature},
		{"signed", Policy{Secret: "k"}, Sign("k", body), nil},
		{"upper-case hex is still hex", Policy{Secret: "k"}, "sha256=" + strings.ToUpper(strings.TrimPrefix(Sign("k", body), "sha256=")), nil},
		{"sha1 prefix refused", Policy{Secret: "k"}, "sha1=" + strings.TrimPrefix(Sign("k", body), "sha256="), ErrSignature},
		{"short mac refused", Policy{Secret: "k"}, Sign("k", body)[:20], ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(headers("X-Signature-256", tt.sig), body, tt.pol)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestSignatureErrorNeverRevealsExpectedMAC(t *testing.T) {
	body := []byte(`{"ref":"refs/heads/main","after":"` + sha + `"}`)
	for name, h := range map[string]http.Header{
		"github":    headers("X-GitHub-Event", "push", "X-Hub-Signature-256", Sign("wrong", body)),
		"gitea":     headers("X-Gitea-Event", "push", "X-Gitea-Signature", strings.TrimPrefix(Sign("wrong", body), "sha256=")),
		"gitlab":    headers("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", "wrong"),
		"bitbucket": headers("X-Event-Key", "repo:push", "X-Hub-Signature", Sign("wrong", body)),
		"generic":   headers("X-Signature-256", Sign("wrong", body)),
	} {
		_, err := Parse(h, body, policy("right"))
		expected := strings.TrimPrefix(Sign("right", body), "sha256=")
		if !errors.Is(err, ErrSignature) || strings.Contains(err.Error(), expected) || strings.Contains(err.Error(), "right") {
			t.Errorf("%s: error %q is not ErrSignature or leaks the expected MAC or secret", name, err)
		}
	}
}

func TestMalformedBodiesNameTheProblem(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"empty", "", "body is empty"},
		{"truncated", `{"ref": "refs/heads/main", "after": `, "truncated JSON"},
		{"syntax", `{"ref": refs/heads/main}`, "not valid JSON at byte 9"},
		{"wrong type", `{"ref": 42}`, `field "ref" is a JSON number, want a string`},
		{"trailing data", `{"ref": "refs/heads/main"} {}`, "unexpected data after the JSON value"},
		{"bad ref", `{"ref":"refs/heads/a..b","after":"` + sha + `"}`, `ref name "a..b"`},
		{"not a ref", `{"ref":"main","after":"` + sha + `"}`, `ref "main" is neither refs/heads/ nor refs/tags/`},
		{"bad commit", `{"ref":"refs/heads/main","after":"zz;rm -rf /"}`, `commit "zz;rm -rf /" is not a full hex id`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			_, err := Parse(headers("X-GitHub-Event", "push", "X-Hub-Signature-256", Sign(secret, body)), body, policy(secret))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrMalformed saying %q", err, tt.want)
			}
		})
	}
}

func TestDeliveryIDIsChecked(t *testing.T) {
	body := []byte("{}")
	for _, id := range []string{strings.Repeat("a", maxDeliveryID+1), "abc\ndef", "a b", "ünï"} {
		h := headers("X-GitHub-Event", "ping", "X-GitHub-Delivery", id, "X-Hub-Signature-256", Sign(secret, body))
		if _, err := Parse(h, body, policy(secret)); !errors.Is(err, ErrMalformed) {
			t.Errorf("delivery id %q: err = %v, want ErrMalformed", id, err)
		}
	}
}

func TestValidRefName(t *testing.T) {
	for _, ok := range []string{"main", "feature/login", "release-1.2", "UPPER_case", "v1.0.0"} {
		if err := ValidRefName(ok); err != nil {
			t.Errorf("ValidRefName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", "a..b", "a b", "a\nb", "x.lock", "/x", "x/", "a//b", "a@{1}", "a:b", ".hidden", "a/.b", "a*", "a\\b", "a~1", "@", strings.Repeat("x", 256)} {
		if err := ValidRefName(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ValidRefName(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}
