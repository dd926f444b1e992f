package config

import "time"

// DefaultSessionTTL is how long a dashboard sign-in lasts: a working
// day, so a forgotten browser does not stay signed in for good.
const DefaultSessionTTL = 12 * time.Hour

// Dashboard configures the web UI at /.
type Dashboard struct {
	// SessionTTL is how long a sign-in lasts; 0 means DefaultSessionTTL.
	SessionTTL Duration `yaml:"session_ttl"`
	// PrivateBadges makes /badge/{project}/{branch}.svg answer signed-in
	// browsers only; by default badges are public, for READMEs.
	PrivateBadges bool `yaml:"private_badges"`
}

func (d *Dashboard) applyDefaults() {
	if d.SessionTTL.Duration == 0 {
		d.SessionTTL.Duration = DefaultSessionTTL
	}
}

func (d *Dashboard) validate(f *findings, field string) {
	if d.SessionTTL.Duration < time.Minute {
		f.bad(field+".session_ttl", "must be at least 1m")
	}
}
