package webhook

import (
	_ "embed"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// Payloads in the format GitLab documents for push, tag push and system
// hook push events.
var (
	//go:embed testdata/gitlab-push.json
	gitlabPushBody []byte
	//go:embed testdata/gitlab-tag-push.json
	gitlabTagPushBody []byte
	//go:embed testdata/gitlab-system-push.json
	gitlabSystemPushBody []byte
)

const (
	gitlabUUID = "9cdd9bd3-8ab8-4a6b-9a70-7c3a4f0f7e32"
	// signingToken is a whsec_ key in the format GitLab shows.
	signingToken = "whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q="
)

func gitlabHeaders(event, token string) http.Header {
	return headers("X-Gitlab-Event", event, "X-Gitlab-Token", token, "X-Gitlab-Event-UUID", gitlabUUID, "Content-Type", "application/json")
}

// gitlabSigned is a delivery from a GitLab hook with a signing token.
func gitlabSigned(t *testing.T, event, token string, at time.Time, body []byte) http.Header {
	t.Helper()
	return gitlabSignedAs(t, event, token, "msg_1", "msg_1", at, body)
}

// gitlabSignedAs is gitlabSigned with webhook-id id (signed) and
// Idempotency-Key key (not signed).
func gitlabSignedAs(t testing.TB, event, token, id, key string, at time.Time, body []byte) http.Header {
	t.Helper()
	sig, err := SignStandard(token, id, at, body)
	if err != nil {
		t.Fatal(err)
	}
	return headers("X-Gitlab-Event", event, "Idempotency-Key", key, "webhook-id", id,
		"webhook-timestamp", strconv.FormatInt(at.Unix(), 10), "webhook-signature", "v1,bm90IHRoaXMgb25l "+sig,
		"X-Gitlab-Event-UUID", gitlabUUID)
}

func TestParseGitLab(t *testing.T) {
	master := Push{Ref: "refs/heads/master", Name: "master", Before: "95790bf891e76fee5e1747ab589903a6a1f80f22",
		After: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", Commit: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
		CloneURL: "http://example.com/mike/diaspora.git", Pusher: "jsmith", HeadMessage: "fixed readme"}
	delivery := func(event, id string, p ...Push) *Delivery {
		return &Delivery{Provider: "gitlab", ID: id, Kind: KindPush, Event: event, Pushes: p}
	}
	systemTag := []byte(`{"event_name":"tag_push","ref":"refs/tags/v2","before":"0000000000000000000000000000000000000000","after":"` + sha + `","checkout_sha":"` + sha + `","user_name":"Root"}`)
	signedPolicy := policy(signingToken)
	runParseCases(t, []parseCase{
		{name: "push hook", header: gitlabHeaders("Push Hook", secret), body: gitlabPushBody, policy: policy(secret), want: delivery("Push Hook", gitlabUUID, master)},
		{name: "tag push hook builds the checked-out commit, not the tag object", header: gitlabHeaders("Tag Push Hook", secret), body: gitlabTagPushBody, policy: policy(secret),
			want: delivery("Tag Push Hook", gitlabUUID, Push{Ref: "refs/tags/v1.0.0", Name: "v1.0.0", IsTag: true, Before: "0000000000000000000000000000000000000000",
				After: "a3fc5ab0c2b3b9a83bbb3e7e1d7c5f4b2e0d9c8e", Commit: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
				CloneURL: "http://example.com/jsmith/example.git", Pusher: "jsmith"})},
		{name: "system hook branch deletion", header: gitlabHeaders("System Hook", secret), body: gitlabSystemPushBody, policy: policy(secret),
			want: delivery("System Hook", gitlabUUID, Push{Ref: "refs/heads/old-feature", Name: "old-feature", Before: "95790bf891e76fee5e1747ab589903a6a1f80f22",
				After: "0000000000000000000000000000000000000000", Deleted: true, CloneURL: "http://example.com/mike/diaspora.git", Pusher: "jsmith"})},
		{name: "system hook tag push", header: gitlabHeaders("System Hook", secret), body: systemTag, policy: policy(secret),
			want: delivery("System Hook", gitlabUUID, Push{Ref: "refs/tags/v2", Name: "v2", IsTag: true, Before: "0000000000000000000000000000000000000000",
				After: sha, Commit: sha, Pusher: "Root"})},
		{name: "system hook other event ignored", header: gitlabHeaders("System Hook", secret), body: []byte(`{"event_name":"project_create"}`), policy: policy(secret),
			want: &Delivery{Provider: "gitlab", ID: gitlabUUID, Kind: KindIgnored, Event: "System Hook project_create"}},
		{name: "merge request ignored", header: gitlabHeaders("Merge Request Hook", secret), body: []byte(`{}`), policy: policy(secret),
			want: &Delivery{Provider: "gitlab", ID: gitlabUUID, Kind: KindIgnored, Event: "Merge Request Hook"}},
		{name: "wrong token", header: gitlabHeaders("Push Hook", "guess"), body: gitlabPushBody, policy: policy(secret), wantErr: ErrSignature},
		{name: "token prefix is not the token", header: gitlabHeaders("Push Hook", secret[:3]), body: gitlabPushBody, policy: policy(secret), wantErr: ErrSignature},
		{name: "no token", header: headers("X-Gitlab-Event", "Push Hook"), body: gitlabPushBody, policy: policy(secret), wantErr: ErrSignature},
		{name: "truncated", header: gitlabHeaders("Push Hook", secret), body: gitlabPushBody[:100], policy: policy(secret), wantErr: ErrMalformed, errHas: "gitlab push hook body is truncated JSON"},
		{name: "signed webhook", header: gitlabSigned(t, "Push Hook", signingToken, now.Add(-time.Minute), gitlabPushBody), body: gitlabPushBody, policy: signedPolicy,
			want: delivery("Push Hook", "msg_1", master)},
		{name: "signed webhook is known by its signed webhook-id, not Idempotency-Key", header: gitlabSignedAs(t, "Push Hook", signingToken, "msg_2", "msg_1", now, gitlabPushBody),
			body: gitlabPushBody, policy: signedPolicy, want: delivery("Push Hook", "msg_2", master)},
		{name: "signed webhook without a webhook-id", header: gitlabSignedAs(t, "Push Hook", signingToken, "", "msg_1", now, gitlabPushBody), body: gitlabPushBody, policy: signedPolicy,
			wantErr: ErrSignature, errHas: "no webhook-id header"},
		{name: "signed webhook with a plain token instead", header: gitlabHeaders("Push Hook", signingToken), body: gitlabPushBody, policy: signedPolicy, wantErr: ErrSignature},
		{name: "signed with another key", header: gitlabSigned(t, "Push Hook", "whsec_b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcm90aGVyMQ==", now, gitlabPushBody), body: gitlabPushBody, policy: signedPolicy, wantErr: ErrSignature},
		{name: "signed body changed", header: gitlabSigned(t, "Push Hook", signingToken, now, gitlabPushBody), body: gitlabTagPushBody, policy: signedPolicy, wantErr: ErrSignature},
		{name: "signed timestamp too old", header: gitlabSigned(t, "Push Hook", signingToken, now.Add(-SignatureTolerance-time.Second), gitlabPushBody), body: gitlabPushBody, policy: signedPolicy,
			wantErr: ErrSignature, errHas: "webhook-timestamp is more than 5m0s from now"},
		{name: "signed timestamp in the future", header: gitlabSigned(t, "Push Hook", signingToken, now.Add(SignatureTolerance+time.Second), gitlabPushBody), body: gitlabPushBody, policy: signedPolicy, wantErr: ErrSignature},
	})
}

func TestGitLabSignedTimestampIsPartOfTheSignature(t *testing.T) {
	h := gitlabSigned(t, "Push Hook", signingToken, now, gitlabPushBody)
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix()+1, 10))
	if _, err := Parse(h, gitlabPushBody, policy(signingToken)); err == nil {
		t.Error("a changed webhook-timestamp was accepted")
	}
}

func TestGitLabSignedIDIsPartOfTheSignature(t *testing.T) {
	h := gitlabSigned(t, "Push Hook", signingToken, now, gitlabPushBody)
	h.Set("webhook-id", "msg_forged")
	if _, err := Parse(h, gitlabPushBody, policy(signingToken)); !errors.Is(err, ErrSignature) {
		t.Errorf("a changed webhook-id: err = %v, want %v", err, ErrSignature)
	}
}
