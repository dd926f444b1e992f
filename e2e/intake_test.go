package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/internal/testenv"
	"github.com/swarmhook/swarmhook/webhook"
)

// signingToken is a GitLab signing token (whsec_ and a base64 key).
const signingToken = "whsec_ZTJlLXNpZ25pbmcta2V5LWZvci1naXRsYWItaG9va3M="

// hostDelivery builds one Git host's push delivery of ref at commit,
// signed the way that host signs, with delivery id id.
type hostDelivery func(ref, commit, id string) (http.Header, []byte)

func hexSig(body []byte) string { return strings.TrimPrefix(webhook.Sign(secret, body), "sha256=") }

func githubDelivery(ref, commit, id string) (http.Header, []byte) {
	branch := strings.TrimPrefix(strings.TrimPrefix(ref, "refs/heads/"), "refs/tags/")
	body := testenv.GitHubPushBody(branch, strings.Repeat("0", 40), commit, "release")
	if strings.HasPrefix(ref, "refs/tags/") {
		body = []byte(strings.Replace(string(body), `"refs/heads/`+branch+`"`, `"`+ref+`"`, 1))
	}
	return http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {"push"}, "X-Github-Delivery": {id},
		"X-Hub-Signature-256": {webhook.Sign(secret, body)}}, body
}

func githubFormDelivery(ref, commit, id string) (http.Header, []byte) {
	_, payload := githubDelivery(ref, commit, id)
	body := []byte("payload=" + url.QueryEscape(string(payload)))
	return http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Github-Event": {"push"}, "X-Github-Delivery": {id},
		"X-Hub-Signature-256": {webhook.Sign(secret, body)}}, body
}

func gitlabBody(ref, commit string) []byte {
	b, _ := json.Marshal(map[string]any{"object_kind": "push", "event_name": "push", "ref": ref,
		"before": strings.Repeat("0", 40), "after": commit, "checkout_sha": commit, "user_username": "tess",
		"project":   map[string]string{"git_http_url": "https://gitlab.example.com/team/app.git"},
		"commits":   []map[string]string{{"id": commit, "message": "release"}},
		"user_name": "Tess Ter"})
	return b
}

func gitlabDelivery(ref, commit, id string) (http.Header, []byte) {
	return http.Header{"Content-Type": {"application/json"}, "X-Gitlab-Event": {"Push Hook"}, "X-Gitlab-Token": {secret},
		"X-Gitlab-Event-Uuid": {id}}, gitlabBody(ref, commit)
}

// gitlabSignedDelivery is from a GitLab hook with a signing token; it goes
// to the project whose secret is that token.
func gitlabSignedDelivery(ref, commit, id string) (http.Header, []byte) {
	body := gitlabBody(ref, commit)
	now := time.Now()
	sig, _ := webhook.SignStandard(signingToken, id, now, body)
	return http.Header{"Content-Type": {"application/json"}, "X-Gitlab-Event": {"Push Hook"}, "Idempotency-Key": {id},
		"Webhook-Id": {id}, "Webhook-Timestamp": {strconv.FormatInt(now.Unix(), 10)}, "Webhook-Signature": {sig}}, body
}

// giteaFamily sends Gitea-format pushes with one host's headers.
func giteaFamily(host string) hostDelivery {
	return func(ref, commit, id string) (http.Header, []byte) {
		b, _ := json.Marshal(map[string]any{"ref": ref, "before": strings.Repeat("0", 40), "after": commit,
			"commits":    []map[string]string{{"id": commit, "message": "release"}},
			"repository": map[string]string{"clone_url": "https://git.example.com/team/app.git"},
			"pusher":     map[string]string{"login": "tess", "username": "tess"}})
		h := http.Header{"Content-Type": {"application/json"}}
		h.Set("X-"+host+"-Event", "push")
		h.Set("X-"+host+"-Delivery", id)
		h.Set("X-"+host+"-Signature", hexSig(b))
		return h, b
	}
}

func bitbucketDelivery(ref, commit, id string) (http.Header, []byte) {
	b, _ := json.Marshal(map[string]any{"push": map[string]any{"changes": []any{map[string]any{
		"new": map[string]any{"type": "branch", "name": strings.TrimPrefix(ref, "refs/heads/"),
			"target": map[string]string{"type": "commit", "hash": commit, "message": "release"}},
		"old": nil, "created": true, "closed": false}}},
		"actor": map[string]string{"nickname": "tess"}})
	return http.Header{"Content-Type": {"application/json"}, "X-Event-Key": {"repo:push"}, "X-Request-Uuid": {id},
		"X-Hub-Signature": {webhook.Sign(secret, b)}}, b
}

func genericDelivery(ref, commit, id string) (http.Header, []byte) {
	b, _ := json.Marshal(map[string]string{"ref": ref, "commit": commit, "pusher": "deploy-script"})
	return http.Header{"Content-Type": {"application/json"}, "X-Delivery-Id": {id}, "X-Signature-256": {webhook.Sign(secret, b)}}, b
}

// TestEveryHostDeploysOnce sends a signed push from each Git host to one
// swarmhook deploying one service: each deploys its commit, a redelivery
// of each builds nothing, and the record of deliveries survives a
// restart.
func TestEveryHostDeploysOnce(t *testing.T) {
	t.Parallel()
	c := testenv.Require(t)
	ns := testenv.Unique("intake")
	repo := testenv.NewGitRepo(t)
	// A service belongs to one project, so the signing-token project
	// deploys a service of its own.
	services := map[string]string{"app": ns + "-app", "app-signed": ns + "-signed"}
	image := fmt.Sprintf("%s/%s/app", testenv.Registry(), ns)
	initial := testenv.BuildAndPush(t, c, image+":init", "v0")
	for _, service := range services {
		testenv.CreateService(t, c, service, initial, testenv.ServiceOptions{Replicas: 1})
	}
	project := func(name, secret string) string {
		return fmt.Sprintf(`
  - name: %s
    repo: %s
    secret: %q
    branches: [main]
    tags: ["v*"]
    images: [{name: %s/app}]
    deploy:
      - branch: "**"
        services: [%s]
        update: {delay: 0s, monitor: 1s}
        timeout: 2m`, name, repo.URL(), secret, ns, services[name])
	}
	sh := testenv.StartSwarmhook(t, fmt.Sprintf("registry: {host: %q, insecure: true}\nprojects:%s%s\n",
		testenv.Registry(), project("app", secret), project("app-signed", signingToken)))

	// sent is a delivery made, to be made again. A host redelivers with
	// the same id (GitLab re-signs with a new timestamp), so each is
	// rebuilt from its host's function.
	type sent struct {
		send            hostDelivery
		ref, commit, id string
		path            string
		job             int64
	}
	var deliveries []sent
	hosts := []struct {
		name    string
		project string
		tag     string
		send    hostDelivery
	}{
		{"github", "app", "", githubDelivery},
		{"github form-encoded", "app", "", githubFormDelivery},
		{"gitlab", "app", "", gitlabDelivery},
		{"gitlab signing token", "app-signed", "", gitlabSignedDelivery},
		{"gitea", "app", "", giteaFamily("Gitea")},
		{"forgejo", "app", "", giteaFamily("Forgejo")},
		{"gogs", "app", "", giteaFamily("Gogs")},
		{"bitbucket", "app", "", bitbucketDelivery},
		{"generic", "app", "", genericDelivery},
		{"github tag", "app", "v1.0.0", githubDelivery},
	}
	for i, h := range hosts {
		ok := t.Run(h.name, func(t *testing.T) {
			version := fmt.Sprintf("v%d", i+1)
			commit := repo.Commit("release "+version, testenv.AppFiles(t, "app "+version))
			ref := "refs/heads/main"
			if h.tag != "" {
				repo.Git("tag", h.tag)
				ref = "refs/tags/" + h.tag
			}
			id := testenv.Unique("delivery-")
			header, body := h.send(ref, commit, id)
			path := "/hooks/" + h.project
			code, resp := sh.Do(http.MethodPost, path, header, body)
			var a struct{ Job int64 }
			if code != http.StatusAccepted || json.Unmarshal(resp, &a) != nil || a.Job == 0 {
				t.Fatalf("delivery answered %d %s, want 202 with a job", code, resp)
			}
			j, log := sh.WaitJob(a.Job, 4*time.Minute)
			if j.Status != "succeeded" || j.Commit != commit {
				t.Fatalf("job %d %s at %s, want succeeded at %s: %s\n%s", a.Job, j.Status, j.Commit, commit, j.Error, testenv.TrimLines(log, 30))
			}
			wantTag := "main-"
			if h.tag != "" {
				wantTag = h.tag + "-"
			}
			if len(j.Images) != 1 || !strings.HasPrefix(j.Images[0].Tag, wantTag) {
				t.Fatalf("job images %+v, want one tagged %s<timestamp>", j.Images, wantTag)
			}
			service := services[h.project]
			if got := testenv.Inspect(t, c, service).Spec.TaskTemplate.ContainerSpec.Image; got != j.Images[0].Ref {
				t.Errorf("%s runs %s, want %s", service, got, j.Images[0].Ref)
			}

			header, body = h.send(ref, commit, id)
			code, resp = sh.Do(http.MethodPost, path, header, body)
			if code != http.StatusOK || json.Unmarshal(resp, &a) != nil || a.Job != j.ID {
				t.Errorf("redelivery answered %d %s, want 200 naming job %d", code, resp, j.ID)
			}
			deliveries = append(deliveries, sent{h.send, ref, commit, id, path, j.ID})
		})
		if !ok {
			t.FailNow()
		}
	}

	noJobAfter := func(when string) {
		t.Helper()
		next := deliveries[len(deliveries)-1].job + 1
		if code, body := sh.API(http.MethodGet, fmt.Sprintf("/api/jobs/%d", next), nil); code != http.StatusNotFound {
			t.Errorf("%s: job %d exists (%d %s): a redelivery built again", when, next, code, body)
		}
	}
	noJobAfter("after redeliveries")

	// The record is in the store, not in memory: a restarted swarmhook
	// still knows every delivery.
	sh.Restart()
	for _, d := range deliveries {
		header, body := d.send(d.ref, d.commit, d.id)
		code, resp := sh.Do(http.MethodPost, d.path, header, body)
		var a struct{ Job int64 }
		if code != http.StatusOK || json.Unmarshal(resp, &a) != nil || a.Job != d.job {
			t.Errorf("redelivery after restart answered %d %s, want 200 naming job %d", code, resp, d.job)
		}
	}
	noJobAfter("after restart")
}
