package webhook

import (
	_ "embed"
	"net/http"
	"testing"
)

// A repo:push in the format Bitbucket Cloud documents, with three changes:
// a branch update, a branch deletion and a new tag.
//
//go:embed testdata/bitbucket-push.json
var bitbucketPushBody []byte

const bitbucketUUID = "5d3a1ba4-6c8f-4f4b-9e51-3bd0ad6f5d0e"

func bitbucketHeaders(event, secret string, body []byte) http.Header {
	return headers("X-Event-Key", event, "X-Request-UUID", bitbucketUUID, "X-Hook-UUID", "{hook}",
		"X-Hub-Signature", Sign(secret, body), "Content-Type", "application/json")
}

func TestParseBitbucket(t *testing.T) {
	const repo = "https://bitbucket.org/team_name/repo_name"
	one := func(change string) []byte {
		return []byte(`{"push":{"changes":[` + change + `]},"actor":{"display_name":"Emma"}}`)
	}
	unknownType := one(`{"new":{"type":"bookmark","name":"x","target":{"hash":"` + sha + `"}}}`)
	empty := one(`{"new":null,"old":null}`)
	noChanges := []byte(`{"push":{"changes":[]}}`)
	shortHash := one(`{"new":{"type":"branch","name":"main","target":{"hash":"709d658"}}}`)
	runParseCases(t, []parseCase{
		{name: "one push per change", header: bitbucketHeaders("repo:push", secret, bitbucketPushBody), body: bitbucketPushBody, policy: policy(secret),
			want: &Delivery{Provider: "bitbucket", ID: bitbucketUUID, Kind: KindPush, Event: "repo:push", Pushes: []Push{
				{Ref: "refs/heads/main", Name: "main", Before: "1e65c05c1d5171631d92438a13901ca7dae9618c", After: "709d658dc5b6d6afcd46049c2f332ee3f515a67d",
					Commit: "709d658dc5b6d6afcd46049c2f332ee3f515a67d", CloneURL: repo, Pusher: "emma", HeadMessage: "Add the login page\n"},
				{Ref: "refs/heads/feature/old", Name: "feature/old", Before: "b1c3a6f4e2a35a1b3b3d2ed2d0d1e87e1a1c9f00", Deleted: true, CloneURL: repo, Pusher: "emma"},
				{Ref: "refs/tags/v2.0.1", Name: "v2.0.1", IsTag: true, After: "709d658dc5b6d6afcd46049c2f332ee3f515a67d",
					Commit: "709d658dc5b6d6afcd46049c2f332ee3f515a67d", CloneURL: repo, Pusher: "emma", HeadMessage: "Add the login page\n"},
			}}},
		{name: "pull request ignored", header: bitbucketHeaders("pullrequest:created", secret, []byte("{}")), body: []byte("{}"), policy: policy(secret),
			want: &Delivery{Provider: "bitbucket", ID: bitbucketUUID, Kind: KindIgnored, Event: "pullrequest:created"}},
		{name: "ping", header: bitbucketHeaders("diagnostics:ping", secret, []byte("{}")), body: []byte("{}"), policy: policy(secret),
			want: &Delivery{Provider: "bitbucket", ID: bitbucketUUID, Kind: KindPing, Event: "diagnostics:ping"}},
		{name: "wrong secret", header: bitbucketHeaders("repo:push", "x", bitbucketPushBody), body: bitbucketPushBody, policy: policy(secret), wantErr: ErrSignature},
		{name: "unknown ref type", header: bitbucketHeaders("repo:push", secret, unknownType), body: unknownType, policy: policy(secret), wantErr: ErrMalformed, errHas: `change 0: webhook: malformed delivery: bitbucket ref type "bookmark"`},
		{name: "change without refs", header: bitbucketHeaders("repo:push", secret, empty), body: empty, policy: policy(secret), wantErr: ErrMalformed, errHas: "neither new nor old"},
		{name: "no changes", header: bitbucketHeaders("repo:push", secret, noChanges), body: noChanges, policy: policy(secret), wantErr: ErrMalformed, errHas: "no changes"},
		{name: "short hash", header: bitbucketHeaders("repo:push", secret, shortHash), body: shortHash, policy: policy(secret), wantErr: ErrMalformed, errHas: "not a full hex id"},
	})
}
