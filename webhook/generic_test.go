package webhook

import (
	_ "embed"
	"testing"
)

// The generic format's example from docs/webhooks.md.
//
//go:embed testdata/generic-push.json
var genericPushBody []byte

func TestParseGeneric(t *testing.T) {
	const docSHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"
	signed := func(body string, kv ...string) parseCase {
		b := []byte(body)
		return parseCase{header: headers(append([]string{"X-Signature-256", Sign(secret, b)}, kv...)...), body: b, policy: policy(secret)}
	}
	with := func(name string, c parseCase, want *Delivery, wantErr error, errHas string) parseCase {
		c.name, c.want, c.wantErr, c.errHas = name, want, wantErr, errHas
		return c
	}
	push := func(id string, p Push) *Delivery {
		return &Delivery{Provider: "generic", ID: id, Kind: KindPush, Event: "push", Pushes: []Push{p}}
	}
	doc := signed(string(genericPushBody), "X-Delivery-ID", "nightly-42")
	branch := signed(`{"branch":"feature/x","commit":"` + sha + `"}`)
	tag := signed(`{"tag":"v1.2.3","commit":"` + sha + `"}`)
	deleted := signed(`{"branch":"old","deleted":true}`)
	ping := signed(`{}`, "X-Event", "ping")
	other := signed(`whatever`, "X-Event", "build")
	typo := signed(`{"branch":"main","comit":"` + sha + `"}`)
	two := signed(`{"branch":"main","tag":"v1","commit":"` + sha + `"}`)
	none := signed(`{"commit":"` + sha + `"}`)
	noCommit := signed(`{"branch":"main"}`)
	runParseCases(t, []parseCase{
		with("documented example", doc, push("nightly-42", Push{Ref: "refs/heads/main", Name: "main", After: docSHA, Commit: docSHA,
			CloneURL: "https://git.example.com/team/app.git", Pusher: "nightly-bot", HeadMessage: "Deploy from the nightly script"}), nil, ""),
		with("branch shorthand", branch, push("", Push{Ref: "refs/heads/feature/x", Name: "feature/x", After: sha, Commit: sha}), nil, ""),
		with("tag shorthand", tag, push("", Push{Ref: "refs/tags/v1.2.3", Name: "v1.2.3", IsTag: true, After: sha, Commit: sha}), nil, ""),
		with("deletion", deleted, push("", Push{Ref: "refs/heads/old", Name: "old", Deleted: true}), nil, ""),
		with("ping", ping, &Delivery{Provider: "generic", Kind: KindPing, Event: "ping"}, nil, ""),
		with("other event ignored", other, &Delivery{Provider: "generic", Kind: KindIgnored, Event: "build"}, nil, ""),
		with("unknown field", typo, nil, ErrMalformed, `unknown field "comit"`),
		with("ref and tag", two, nil, ErrMalformed, "exactly one of ref, branch or tag"),
		with("no ref", none, nil, ErrMalformed, "exactly one of ref, branch or tag"),
		with("no commit", noCommit, nil, ErrMalformed, `commit "" is not a full hex id`),
		{name: "no signature", header: headers(), body: genericPushBody, policy: policy(secret), wantErr: ErrSignature},
		{name: "unsigned allowed", header: headers(), body: genericPushBody, policy: Policy{AllowUnsigned: true},
			want: push("", Push{Ref: "refs/heads/main", Name: "main", After: docSHA, Commit: docSHA,
				CloneURL: "https://git.example.com/team/app.git", Pusher: "nightly-bot", HeadMessage: "Deploy from the nightly script"})},
	})
}
