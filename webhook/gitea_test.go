package webhook

import (
	_ "embed"
	"net/http"
	"strings"
	"testing"
)

// Push payloads in the format Gitea's and Gogs's documentation show;
// Forgejo sends Gitea's.
var (
	//go:embed testdata/gitea-push.json
	giteaPushBody []byte
	//go:embed testdata/gogs-push.json
	gogsPushBody []byte
)

// giteaHeaders is what each of the family sends. Forgejo adds Gitea's
// headers and Gitea adds GitHub's (with a GitHub signature), which Parse
// must not mistake for the other host.
func giteaHeaders(f giteaFlavor, event, secret string, body []byte) http.Header {
	sig := strings.TrimPrefix(Sign(secret, body), "sha256=")
	h := headers(f.event, event, f.signature, sig, f.delivery, "d-"+f.provider, "Content-Type", "application/json")
	switch f {
	case forgejo:
		h.Set("X-Gitea-Event", event)
		h.Set("X-Gitea-Signature", sig)
		fallthrough
	case gitea:
		h.Set("X-Gogs-Event", event)
		h.Set("X-GitHub-Event", event)
		h.Set("X-Hub-Signature-256", "sha256="+sig)
	}
	return h
}

func TestParseGiteaFamily(t *testing.T) {
	develop := Push{Ref: "refs/heads/develop", Name: "develop", Before: "28e1879d029cb852e4844d9c718537df08844e03",
		After: "bffeb74224043ba2feb48d137756c8a9331c449a", Commit: "bffeb74224043ba2feb48d137756c8a9331c449a",
		CloneURL: "http://localhost:3000/gitea/webhooks.git", Pusher: "gitea", HeadMessage: "Webhooks Yay!"}
	master := Push{Ref: "refs/heads/master", Name: "master", Before: "28e1879d029cb852e4844d9c718537df08844e03",
		After: "bffeb74224043ba2feb48d137756c8a9331c449a", Commit: "bffeb74224043ba2feb48d137756c8a9331c449a",
		CloneURL: "http://localhost:3000/unknwon/webhooks.git", Pusher: "unknwon", HeadMessage: "!@#0^%>>>><<<<>>>>\n"}
	deleted := []byte(`{"ref":"refs/heads/gone","before":"` + sha + `","after":"0000000000000000000000000000000000000000","pusher":{"username":"u"}}`)
	tag := []byte(`{"ref":"refs/tags/v3","before":"0000000000000000000000000000000000000000","after":"` + sha + `","head_commit":{"id":"` + sha + `","message":"release"}}`)
	var cases []parseCase
	for _, f := range []giteaFlavor{gitea, forgejo, gogs} {
		body, want := giteaPushBody, develop
		if f == gogs {
			body, want = gogsPushBody, master
		}
		push := func(p Push) *Delivery {
			return &Delivery{Provider: f.provider, ID: "d-" + f.provider, Kind: KindPush, Event: "push", Pushes: []Push{p}}
		}
		cases = append(cases,
			parseCase{name: f.provider + " push", header: giteaHeaders(f, "push", secret, body), body: body, policy: policy(secret), want: push(want)},
			parseCase{name: f.provider + " deletion", header: giteaHeaders(f, "push", secret, deleted), body: deleted, policy: policy(secret),
				want: push(Push{Ref: "refs/heads/gone", Name: "gone", Before: sha, After: "0000000000000000000000000000000000000000", Deleted: true, Pusher: "u"})},
			parseCase{name: f.provider + " tag", header: giteaHeaders(f, "push", secret, tag), body: tag, policy: policy(secret),
				want: push(Push{Ref: "refs/tags/v3", Name: "v3", IsTag: true, Before: "0000000000000000000000000000000000000000", After: sha, Commit: sha, HeadMessage: "release"})},
			parseCase{name: f.provider + " create ignored", header: giteaHeaders(f, "create", secret, []byte("{}")), body: []byte("{}"), policy: policy(secret),
				want: &Delivery{Provider: f.provider, ID: "d-" + f.provider, Kind: KindIgnored, Event: "create"}},
			parseCase{name: f.provider + " wrong secret", header: giteaHeaders(f, "push", "nope", body), body: body, policy: policy(secret), wantErr: ErrSignature},
			parseCase{name: f.provider + " prefixed signature refused", header: headers(f.event, "push", f.signature, Sign(secret, body)), body: body, policy: policy(secret), wantErr: ErrSignature},
			parseCase{name: f.provider + " malformed", header: giteaHeaders(f, "push", secret, []byte("{")), body: []byte("{"), policy: policy(secret), wantErr: ErrMalformed, errHas: f.provider + " push body is truncated"},
		)
	}
	runParseCases(t, cases)
}
