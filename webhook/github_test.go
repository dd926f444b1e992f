package webhook

import (
	_ "embed"
	"net/http"
	"net/url"
	"testing"
)

// GitHub's own examples, from the @octokit/webhooks-examples package
// (api.github.com push and ping), and one hand-made branch deletion.
var (
	//go:embed testdata/github-push-branch.json
	githubPushBranch []byte
	//go:embed testdata/github-push-tag.json
	githubPushTag []byte
	//go:embed testdata/github-push-tag-deleted.json
	githubPushTagDeleted []byte
	//go:embed testdata/github-ping.json
	githubPing []byte
	//go:embed testdata/github-push.json
	githubDeleteBranch []byte
)

const githubDelivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"

func githubHeaders(event, secret string, body []byte) http.Header {
	return headers("X-GitHub-Event", event, "X-GitHub-Delivery", githubDelivery,
		"X-Hub-Signature-256", Sign(secret, body), "Content-Type", "application/json")
}

func githubForm(event, secret string, payload []byte) (http.Header, []byte) {
	body := []byte("payload=" + url.QueryEscape(string(payload)))
	h := githubHeaders(event, secret, body)
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h, body
}

func TestParseGitHub(t *testing.T) {
	const exampleSHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	branch := Push{Ref: "refs/heads/master", Name: "master", Before: "0000000000000000000000000000000000000000",
		After: exampleSHA, Commit: exampleSHA, CloneURL: "https://github.com/Codertocat/Hello-World.git",
		Pusher: "Codertocat", HeadMessage: "Initial commit"}
	push := func(p ...Push) *Delivery {
		return &Delivery{Provider: "github", ID: githubDelivery, Kind: KindPush, Event: "push", Pushes: p}
	}
	formHeader, formBody := githubForm("push", secret, githubPushBranch)
	formNoPayload := []byte("other=1")
	formNoPayloadHeader := githubHeaders("push", secret, formNoPayload)
	formNoPayloadHeader.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	runParseCases(t, []parseCase{
		{name: "branch push", header: githubHeaders("push", secret, githubPushBranch), body: githubPushBranch, policy: policy(secret), want: push(branch)},
		{name: "form-encoded branch push", header: formHeader, body: formBody, policy: policy(secret), want: push(branch)},
		{name: "form signed over the raw body", header: githubHeaders("push", secret, githubPushBranch), body: formBody, policy: policy(secret), wantErr: ErrSignature},
		{name: "form without payload", header: formNoPayloadHeader, body: formNoPayload, policy: policy(secret), wantErr: ErrMalformed, errHas: "no payload field"},
		{name: "tag push", header: githubHeaders("push", secret, githubPushTag), body: githubPushTag, policy: policy(secret),
			want: push(Push{Ref: "refs/tags/simple-tag", Name: "simple-tag", IsTag: true, Before: "0000000000000000000000000000000000000000",
				After: exampleSHA, Commit: exampleSHA, CloneURL: "https://github.com/Codertocat/Hello-World.git",
				Pusher: "Codertocat", HeadMessage: "Adding a .gitignore file"})},
		{name: "tag deletion", header: githubHeaders("push", secret, githubPushTagDeleted), body: githubPushTagDeleted, policy: policy(secret),
			want: push(Push{Ref: "refs/tags/simple-tag", Name: "simple-tag", IsTag: true, Before: exampleSHA,
				After: "0000000000000000000000000000000000000000", Deleted: true, CloneURL: "https://github.com/Codertocat/Hello-World.git", Pusher: "Codertocat"})},
		{name: "branch deletion with a zero after", header: githubHeaders("push", secret, githubDeleteBranch), body: githubDeleteBranch, policy: policy(secret),
			want: push(Push{Ref: "refs/heads/feature/Login", Name: "feature/Login", Before: exampleSHA,
				After: "0000000000000000000000000000000000000000", Deleted: true, CloneURL: "https://github.com/Codertocat/Hello-World.git", Pusher: "Codertocat"})},
		{name: "ping", header: githubHeaders("ping", secret, githubPing), body: githubPing, policy: policy(secret),
			want: &Delivery{Provider: "github", ID: githubDelivery, Kind: KindPing, Event: "ping"}},
		{name: "other event ignored unread", header: githubHeaders("issues", secret, []byte("not json")), body: []byte("not json"), policy: policy(secret),
			want: &Delivery{Provider: "github", ID: githubDelivery, Kind: KindIgnored, Event: "issues"}},
		{name: "wrong secret", header: githubHeaders("push", "other", githubPushBranch), body: githubPushBranch, policy: policy(secret), wantErr: ErrSignature},
		{name: "body changed after signing", header: githubHeaders("push", secret, githubPushBranch), body: append([]byte(" "), githubPushBranch...), policy: policy(secret), wantErr: ErrSignature},
		{name: "no signature", header: headers("X-GitHub-Event", "push"), body: githubPushBranch, policy: policy(secret), wantErr: ErrSignature, errHas: "no signature header"},
		{name: "project without secret", header: githubHeaders("push", "", githubPushBranch), body: githubPushBranch, policy: policy(""), wantErr: ErrUnsigned},
		{name: "unsigned allowed", header: headers("X-GitHub-Event", "push"), body: githubPushBranch, policy: Policy{AllowUnsigned: true},
			want: &Delivery{Provider: "github", Kind: KindPush, Event: "push", Pushes: []Push{branch}}},
	})
}
