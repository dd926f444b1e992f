package webhook

import (
	"bytes"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// checkDelivery asserts what every accepted delivery promises to the
// stages after intake, whatever the body was.
func checkDelivery(t *testing.T, d Delivery) {
	t.Helper()
	if validDeliveryID(d.ID) != nil {
		t.Fatalf("accepted delivery id %q", d.ID)
	}
	if d.Kind != KindPush && len(d.Pushes) > 0 {
		t.Fatalf("%s delivery carries pushes", d.Kind)
	}
	for _, p := range d.Pushes {
		if ValidRefName(p.Name) != nil {
			t.Fatalf("accepted invalid ref name %q", p.Name)
		}
		if want := "refs/heads/" + p.Name; p.IsTag {
			if p.Ref != "refs/tags/"+p.Name {
				t.Fatalf("tag ref %q does not end in name %q", p.Ref, p.Name)
			}
		} else if p.Ref != want {
			t.Fatalf("branch ref %q does not end in name %q", p.Ref, p.Name)
		}
		if !p.Deleted && ValidCommit(p.Commit) != nil {
			t.Fatalf("accepted invalid commit %q", p.Commit)
		}
		if p.Deleted && p.Commit != "" {
			t.Fatalf("deleted ref carries commit %q", p.Commit)
		}
	}
}

// fuzzParse fuzzes one provider's parser with correctly signed bodies,
// so the fuzzer reaches the decoding behind the signature check.
func fuzzParse(f *testing.F, seeds [][]byte, sign func(body []byte) http.Header) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := Parse(sign(body), body, policy(secret))
		if err != nil {
			return
		}
		checkDelivery(t, d)
	})
}

func FuzzParseGitHub(f *testing.F) {
	_, form := githubForm("push", secret, githubPushBranch)
	fuzzParse(f, [][]byte{githubPushBranch, githubPushTag, githubPushTagDeleted, githubDeleteBranch, form, []byte("payload=%7B%7D")},
		func(body []byte) http.Header {
			h := githubHeaders("push", secret, body)
			if bytes.HasPrefix(body, []byte("payload=")) {
				h.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			return h
		})
}

func FuzzParseGitLab(f *testing.F) {
	fuzzParse(f, [][]byte{gitlabPushBody, gitlabTagPushBody, gitlabSystemPushBody, []byte(`{"event_name":"tag_push"}`)},
		func(body []byte) http.Header {
			event := "Push Hook"
			if bytes.Contains(body, []byte("event_name")) {
				event = "System Hook"
			}
			return gitlabHeaders(event, secret)
		})
}

// FuzzParseGitLabSigned fuzzes deliveries signed with a whsec_ token;
// an accepted one is always known by the webhook-id the signature covers.
func FuzzParseGitLabSigned(f *testing.F) {
	f.Add(gitlabPushBody, "msg_1", "msg_1")
	f.Add(gitlabTagPushBody, "msg_2", "msg_1")
	f.Add([]byte(`{}`), "", "key")
	f.Fuzz(func(t *testing.T, body []byte, id, key string) {
		d, err := Parse(gitlabSignedAs(t, "Push Hook", signingToken, id, key, now, body), body, policy(signingToken))
		if err != nil {
			return
		}
		checkDelivery(t, d)
		if d.ID != id {
			t.Fatalf("signed delivery known as %q, want its webhook-id %q", d.ID, id)
		}
	})
}

func FuzzParseGitea(f *testing.F) {
	fuzzParse(f, [][]byte{giteaPushBody, gogsPushBody}, func(body []byte) http.Header {
		return giteaHeaders(gitea, "push", secret, body)
	})
}

func FuzzParseBitbucket(f *testing.F) {
	fuzzParse(f, [][]byte{bitbucketPushBody}, func(body []byte) http.Header {
		return bitbucketHeaders("repo:push", secret, body)
	})
}

func FuzzParseGeneric(f *testing.F) {
	fuzzParse(f, [][]byte{genericPushBody, []byte(`{"tag":"v1","commit":"` + sha + `"}`), []byte(`{"branch":"x","deleted":true}`)},
		func(body []byte) http.Header { return headers("X-Signature-256", Sign(secret, body)) })
}

// FuzzSignature checks that every way of verifying accepts exactly the
// right signature and nothing else, and never panics on what a sender
// puts in a header.
func FuzzSignature(f *testing.F) {
	f.Add("It's a Secret to Everybody", []byte("Hello, World!"), "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", int64(0))
	f.Add(signingToken, gitlabPushBody, "v1,AAAA v1,", now.Unix())
	f.Add("k", []byte{}, "", int64(-1))
	f.Fuzz(func(t *testing.T, secret string, body []byte, sig string, ts int64) {
		right := Sign(secret, body)
		want := strings.HasPrefix(sig, "sha256=") && strings.EqualFold(sig, right)
		if validHexHMAC(body, secret, "sha256=", sig) != want {
			t.Fatalf("validHexHMAC(%q) = %v, want %v (right signature %q)", sig, !want, want, right)
		}
		if !validHexHMAC(body, secret, "sha256=", right) || !validHexHMAC(body, secret, "", strings.TrimPrefix(right, "sha256=")) {
			t.Fatal("the right signature was refused")
		}
		if validToken(secret, sig) != (sig == secret && sig != "") {
			t.Fatalf("validToken(%q) disagrees with equality", sig)
		}
		h := headers("webhook-id", "msg", "webhook-timestamp", strconv.FormatInt(ts, 10), "webhook-signature", sig)
		pol := Policy{Secret: signingTokenPrefix + "c2VjcmV0", Now: now}
		if standardWebhook(h, body, pol.Secret, now) == nil {
			good, _ := SignStandard(pol.Secret, "msg", now, body)
			if !strings.Contains(sig, good[3:]) {
				t.Fatalf("standard webhook signature %q accepted, want one containing %q", sig, good)
			}
		}
	})
}

// TestParseAllocationIsBoundedByBody decodes a large many-change delivery
// and checks the parser allocates within a small multiple of the body, so
// the body limit bounds memory too.
func TestParseAllocationIsBoundedByBody(t *testing.T) {
	change := `{"new":{"type":"branch","name":"b","target":{"hash":"` + sha + `","message":"m"}},"old":null},`
	body := []byte(`{"push":{"changes":[` + strings.Repeat(change, 4000) + change[:len(change)-1] + `]}}`)
	h := bitbucketHeaders("repo:push", secret, body)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d, err := Parse(h, body, policy(secret))
	runtime.ReadMemStats(&after)
	if err != nil || len(d.Pushes) != 4001 {
		t.Fatalf("Parse = %d pushes, %v", len(d.Pushes), err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16*uint64(len(body)) {
		t.Errorf("parsing a %d-byte body allocated %d bytes, over 16x the body", len(body), got)
	}
}
