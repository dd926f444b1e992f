package config

import (
	"strings"
	"testing"
)

func TestLoadSlack(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		wantErr    string // "" loads
	}{
		{"good", `{signing_secret: "${SLACK_SIGNING_SECRET}", users: [{id: U123, scopes: [deploy, rollback]}]}`, ""},
		{"no secret", `{users: [{id: U123, scopes: [read]}]}`, "chat.slack.signing_secret: must not be empty"},
		{"empty secret var", `{signing_secret: "${EMPTY}", users: [{id: U123, scopes: [read]}]}`, "chat.slack.signing_secret"},
		{"no users", `{signing_secret: x}`, "chat.slack.users: must not be empty"},
		{"unknown scope", `{signing_secret: x, users: [{id: U1, scopes: [root]}]}`, `chat.slack.users[0].scopes[0]: unknown scope "root"`},
		{"twice", `{signing_secret: x, users: [{id: U1, scopes: [read]}, {id: U1, scopes: [deploy]}]}`, `chat.slack.users[1].id: "U1" is listed twice`},
		{"same id in two teams", `{signing_secret: x, users: [{id: U1, team: T1, scopes: [read]}, {id: U1, team: T2, scopes: [deploy]}]}`, ""},
		{"bad response url", `{signing_secret: x, users: [{id: U1, scopes: [read]}], response_urls: ["hooks.slack.com"]}`, "chat.slack.response_urls[0]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(strings.NewReader(minimal+"chat:\n  slack: "+tt.yaml+"\n"),
				env(map[string]string{"SHOP_SECRET": "0123456789abcdef", "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5", "EMPTY": ""}))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "8f742231") {
					t.Errorf("error repeats the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := c.Chat.Slack
			if len(s.ResponseURLs) != 1 || s.ResponseURLs[0] != DefaultSlackResponseURL {
				t.Errorf("response_urls default: %q", s.ResponseURLs)
			}
			if u := s.Users[0]; u.Who() != "slack:U1" && u.Who() != "slack:U123" {
				t.Errorf("who: %q", u.Who())
			}
		})
	}
}

func TestSlackUserScopes(t *testing.T) {
	u := SlackUser{ID: "U1", Scopes: []Scope{ScopeDeploy}}
	if !u.Has(ScopeDeploy) || u.Has(ScopeRollback) {
		t.Errorf("deploy user: deploy %v rollback %v", u.Has(ScopeDeploy), u.Has(ScopeRollback))
	}
	if admin := (SlackUser{Scopes: []Scope{ScopeAdmin}}); !admin.Has(ScopeScale) {
		t.Error("admin lacks scale")
	}
}
