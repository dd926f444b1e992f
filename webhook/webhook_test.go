package webhook

import (
	_ "embed"
	"errors"
	"net/http"
	"strings"
	"testing"
)

//go:embed testdata/github-push.json
var githubDeletePush []byte

const sha = "a10867b14bb761a232cd80139fbd4c0d33264240"

func githubBody(ref, after, message string) []byte {
	return []byte(`{"ref":"` + ref + `","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"` + after +
		`","deleted":false,"repository":{"clone_url":"https://github.com/o/r.git"},"pusher":{"name":"octo"},"head_commit":{"id":"` + after +
		`","message":` + message + `}}`)
}

func githubHeaders(event, secret string, body []byte) http.Header {
	h := http.Header{}
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	h.Set("X-Hub-Signature-256", Sign(secret, body))
	return h
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
}

func TestParseGitHub(t *testing.T) {
	const secret = "topsecret"
	push := githubBody("refs/heads/main", sha, `"fix: thing"`)
	tests := []struct {
		name    string
		header  http.Header
		body    []byte
		secret  string
		wantErr error
		check   func(t *testing.T, d Delivery)
	}{
		{
			name: "push", header: githubHeaders("push", secret, push), body: push, secret: secret,
			check: func(t *testing.T, d Delivery) {
				if d.Kind != KindPush || len(d.Pushes) != 1 {
					t.Fatalf("got %+v", d)
				}
				p := d.Pushes[0]
				if p.Name != "main" || p.IsTag || p.After != sha || p.Pusher != "octo" || p.HeadMessage != "fix: thing" || p.Deleted {
					t.Errorf("push = %+v", p)
				}
				if d.ID != "72d3162e-cc78-11e3-81ab-4c9367dc0958" || d.Provider != "github" {
					t.Errorf("delivery = %+v", d)
				}
			},
		},
		{
			name: "ping", header: githubHeaders("ping", secret, []byte(`{"zen":"x"}`)), body: []byte(`{"zen":"x"}`), secret: secret,
			check: func(t *testing.T, d Delivery) {
				if d.Kind != KindPing {
					t.Errorf("kind = %s", d.Kind)
				}
			},
		},
		{
			name: "other event ignored", header: githubHeaders("issues", secret, []byte(`{}`)), body: []byte(`{}`), secret: secret,
			check: func(t *testing.T, d Delivery) {
				if d.Kind != KindIgnored || d.Event != "issues" {
					t.Errorf("got %+v", d)
				}
			},
		},
		{
			name: "deleted branch from fixture", header: githubHeaders("push", secret, githubDeletePush), body: githubDeletePush, secret: secret,
			check: func(t *testing.T, d Delivery) {
				if p := d.Pushes[0]; !p.Deleted || p.Name != "feature/Login" {
					t.Errorf("push = %+v", p)
				}
			},
		},
		{name: "wrong secret", header: githubHeaders("push", "other", push), body: push, secret: secret, wantErr: ErrSignature},
		{name: "body changed after signing", header: githubHeaders("push", secret, push), body: append([]byte(" "), push...), secret: secret, wantErr: ErrSignature},
		{name: "no signature", header: http.Header{"X-Github-Event": {"push"}}, body: push, secret: secret, wantErr: ErrSignature},
		{name: "project without secret", header: githubHeaders("push", "", push), body: push, secret: "", wantErr: ErrUnsigned},
		{name: "malformed json", header: githubHeaders("push", secret, []byte(`{"ref":`)), body: []byte(`{"ref":`), secret: secret, wantErr: ErrMalformed},
		{name: "bad ref", header: githubHeaders("push", secret, githubBody("refs/heads/../x", sha, `""`)), body: githubBody("refs/heads/../x", sha, `""`), secret: secret, wantErr: ErrMalformed},
		{name: "bad commit", header: githubHeaders("push", secret, githubBody("refs/heads/main", "zz;rm -rf", `""`)), body: githubBody("refs/heads/main", "zz;rm -rf", `""`), secret: secret, wantErr: ErrMalformed},
		{name: "no event header", header: http.Header{}, body: push, secret: secret, wantErr: ErrUnknownProvider},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(tt.header, tt.body, tt.secret, false)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

func TestSignatureErrorNeverRevealsExpectedMAC(t *testing.T) {
	body := githubBody("refs/heads/main", sha, `""`)
	h := githubHeaders("push", "wrong", body)
	_, err := Parse(h, body, "right", false)
	expected := strings.TrimPrefix(Sign("right", body), "sha256=")
	if err == nil || strings.Contains(err.Error(), expected) || strings.Contains(err.Error(), "right") {
		t.Errorf("error %q leaks the expected MAC or secret", err)
	}
}

func TestValidRefName(t *testing.T) {
	for _, ok := range []string{"main", "feature/login", "release-1.2", "UPPER_case"} {
		if err := ValidRefName(ok); err != nil {
			t.Errorf("ValidRefName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", "a..b", "a b", "a\nb", "x.lock", "/x", "x/", "a//b", "a@{1}", "a:b", ".hidden", "a/.b", "a*", "a\\b", "a~1"} {
		if err := ValidRefName(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ValidRefName(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func FuzzParseGitHub(f *testing.F) {
	f.Add([]byte(githubBody("refs/heads/main", sha, `"m"`)))
	f.Add(githubDeletePush)
	f.Add([]byte(`{"ref":"refs/tags/v1","after":"` + sha + `"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		h := githubHeaders("push", "k", body)
		d, err := Parse(h, body, "k", false)
		if err != nil {
			return
		}
		for _, p := range d.Pushes {
			if ValidRefName(p.Name) != nil {
				t.Fatalf("accepted invalid ref name %q", p.Name)
			}
			if !p.Deleted && ValidCommit(p.After) != nil {
				t.Fatalf("accepted invalid commit %q", p.After)
			}
		}
	})
}
