package config

import (
	"strings"
	"testing"
)

func TestBuildersLoad(t *testing.T) {
	c, err := Load(strings.NewReader(`
registry: {host: r:5000}
docker:
  builders:
    - {name: a, host: "unix:///run/a.sock", labels: {arch: amd64}}
    - {name: b, host: "tcp://b:2376", weight: 3, tls: {ca: /c/ca.pem, cert: /c/cert.pem, key: /c/key.pem}}
projects: [{name: p, repo: x, images: [{name: p}], build: {on: {arch: amd64}}}]
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	b := c.Docker.Builders
	if len(b) != 2 || b[0].Weight != DefaultBuilderWeight || b[1].Weight != 3 || b[1].TLS.Key != "/c/key.pem" {
		t.Errorf("builders = %+v", b)
	}
	if p, _ := c.Project("p"); p.Build.On["arch"] != "amd64" {
		t.Errorf("build.on = %v", p.Build.On)
	}
}

func TestBuildersInvalid(t *testing.T) {
	tests := []struct{ name, docker, on, want string }{
		{"duplicate name", `{builders: [{name: a, host: "unix:///a"}, {name: a, host: "unix:///b"}]}`, "", `docker.builders[1].name: "a" is already the name`},
		{"bad scheme", `{builders: [{name: a, host: "http://a"}]}`, "", `docker.builders[0].host: scheme "http"`},
		{"no address", `{builders: [{name: a, host: "tcp://"}]}`, "", `docker.builders[0].host: tcp:// needs an address`},
		{"tls on unix", `{builders: [{name: a, host: "unix:///a", tls: {ca: c, cert: c, key: k}}]}`, "", `docker.builders[0].tls: only a tcp://`},
		{"tls half", `{builders: [{name: a, host: "tcp://a:2376", tls: {ca: c}}]}`, "", `docker.builders[0].tls: needs ca, cert and key`},
		{"negative weight", `{builders: [{name: a, host: "unix:///a", weight: -1}]}`, "", `docker.builders[0].weight`},
		{"on without builders", `{}`, `{arch: arm64}`, `projects[0].build.on: needs docker.builders`},
		{"on matching none", `{builders: [{name: a, host: "unix:///a", labels: {arch: amd64}}]}`, `{arch: arm64}`, `projects[0].build.on: no builder`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			on := ""
			if tt.on != "" {
				on = ", build: {on: " + tt.on + "}"
			}
			_, err := Load(strings.NewReader("registry: {host: r:5000}\ndocker: "+tt.docker+"\nprojects: [{name: p, repo: x, images: [{name: p}]"+on+"}]\n"), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	tests := []struct {
		name       string
		labels, on map[string]string
		want       bool
	}{
		{"nothing asked", map[string]string{"a": "1"}, nil, true},
		{"all there", map[string]string{"a": "1", "b": "2"}, map[string]string{"a": "1"}, true},
		{"other value", map[string]string{"a": "1"}, map[string]string{"a": "2"}, false},
		{"missing key", nil, map[string]string{"a": ""}, false},
	}
	for _, tt := range tests {
		if got := Matches(tt.labels, tt.on); got != tt.want {
			t.Errorf("%s: Matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}
