package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
)

// DefaultBuilderWeight is a build engine's weight when none is set: all
// engines equal.
const DefaultBuilderWeight = 1

// BuildEngine is one Docker engine images are built and pushed on.
type BuildEngine struct {
	// Name names the engine in job logs, /readyz and /metrics.
	Name string `yaml:"name"`
	// Host is the engine address: unix:///path, tcp://host:2376 or
	// ssh://user@host (through the docker command on that host).
	Host string `yaml:"host"`
	// TLS holds client certificate files for a tcp:// engine.
	TLS *EngineTLS `yaml:"tls"`
	// Weight is how many builds the engine takes for one of an engine
	// of weight 1: a job goes to the engine with the fewest running
	// builds per weight.
	Weight int `yaml:"weight"`
	// Labels are matched against projects[].build.on.
	Labels map[string]string `yaml:"labels"`
}

// EngineTLS names the PEM files of a TLS client: the CA that signed the
// engine's certificate, and the client's certificate and key.
type EngineTLS struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

var builderName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

// validateBuilders checks docker.builders: unique names, a usable address
// for each, TLS files only for tcp:// and all three of them.
func (c *Config) validateBuilders(f *findings) {
	seen := map[string]bool{}
	for i := range c.Docker.Builders {
		b := &c.Docker.Builders[i]
		field := fmt.Sprintf("docker.builders[%d]", i)
		if !builderName.MatchString(b.Name) {
			f.bad(field+".name", "%q must be letters, digits, '.', '_' or '-'", b.Name)
		} else if seen[b.Name] {
			f.bad(field+".name", "%q is already the name of another builder", b.Name)
		}
		seen[b.Name] = true
		u, err := url.Parse(b.Host)
		switch {
		case err != nil || b.Host == "":
			f.bad(field+".host", "must be unix:///path, tcp://host:port or ssh://user@host")
		case u.Scheme == "unix" && u.Path == "", u.Scheme == "tcp" && u.Host == "", u.Scheme == "ssh" && u.Host == "":
			f.bad(field+".host", "%s:// needs an address", u.Scheme)
		case u.Scheme != "unix" && u.Scheme != "tcp" && u.Scheme != "ssh":
			f.bad(field+".host", "scheme %q: must be unix, tcp or ssh", u.Scheme)
		case b.TLS != nil && u.Scheme != "tcp":
			f.bad(field+".tls", "only a tcp:// engine takes TLS files")
		}
		if b.TLS != nil && (b.TLS.CA == "" || b.TLS.Cert == "" || b.TLS.Key == "") {
			f.bad(field+".tls", "needs ca, cert and key")
		}
		if b.Weight < 0 {
			f.bad(field+".weight", "must be at least 1")
		}
	}
}

// validateBuildOn checks that a project's build.on labels match at least
// one of docker.builders, so its jobs have an engine to go to.
func (c *Config) validateBuildOn(f *findings, field string, on map[string]string) {
	if len(on) == 0 {
		return
	}
	if len(c.Docker.Builders) == 0 {
		f.bad(field, "needs docker.builders: with no builders every build runs on docker.host")
		return
	}
	if !slices.ContainsFunc(c.Docker.Builders, func(b BuildEngine) bool { return Matches(b.Labels, on) }) {
		f.bad(field, "no builder in docker.builders has all of the labels %v", on)
	}
}

// Matches reports whether labels hold every key of on with its value.
func Matches(labels, on map[string]string) bool {
	for k, v := range on {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
