package config

import (
	"crypto/sha256"
	"crypto/subtle"
	"slices"
	"strings"

	"github.com/swarmhook/swarmhook/tagpolicy"
)

// What the rest of swarmhook asks of a loaded Config: which project,
// which deploy target, which rules.

// Rule converts the rule for tagpolicy.
func (r Retention) Rule() tagpolicy.Rule {
	return tagpolicy.Rule{Branches: r.Branches, KeepLast: r.KeepLast, KeepWithin: r.KeepWithin.Duration}
}

// RetentionFor returns the rules for image img of project p: the image's
// own, else the project's, else the defaults under prune.
func (c *Config) RetentionFor(p *Project, img *Image) []tagpolicy.Rule {
	rs := c.Prune.Retention
	if len(p.Retention) > 0 {
		rs = p.Retention
	}
	if len(img.Retention) > 0 {
		rs = img.Retention
	}
	if len(rs) == 0 {
		return []tagpolicy.Rule{tagpolicy.DefaultRule()}
	}
	out := make([]tagpolicy.Rule, len(rs))
	for i, r := range rs {
		out[i] = r.Rule()
	}
	return out
}

// Project returns the project called name.
func (c *Config) Project(name string) (*Project, bool) {
	for i := range c.Projects {
		if c.Projects[i].Name == name {
			return &c.Projects[i], true
		}
	}
	return nil, false
}

// BuildsBranch reports whether pushes to branch build at all.
func (p *Project) BuildsBranch(branch string) bool {
	return slices.ContainsFunc(p.Branches, func(g Glob) bool { return g.Match(branch) })
}

// BuildsTag reports whether pushes of tag build at all.
func (p *Project) BuildsTag(tag string) bool {
	return slices.ContainsFunc(p.Tags, func(g Glob) bool { return g.Match(tag) })
}

// DeployFor returns the first deploy target whose branch pattern matches,
// of those a push deploys to (not those taking promotions only).
func (p *Project) DeployFor(branch string) (*Deploy, bool) {
	for i := range p.Deploy {
		if p.Deploy[i].PromoteFrom == "" && p.Deploy[i].Branch.Match(branch) {
			return &p.Deploy[i], true
		}
	}
	return nil, false
}

// Environment returns the deploy target of the project named env, and
// its index in Deploy.
func (p *Project) Environment(env string) (*Deploy, int, bool) {
	for i := range p.Deploy {
		if env != "" && p.Deploy[i].Environment == env {
			return &p.Deploy[i], i, true
		}
	}
	return nil, -1, false
}

// Reaches reports whether what target d deploys reaches service svc:
// d manages it, or a target taking promotions from d's environment does
// (or one promoting from that one, and so on).
func (p *Project) Reaches(d *Deploy, svc string) bool {
	seen := map[*Deploy]bool{}
	for next := []*Deploy{d}; len(next) > 0; {
		t := next[0]
		next = next[1:]
		if seen[t] {
			continue
		}
		seen[t] = true
		if t.Manages(svc) {
			return true
		}
		for i := range p.Deploy {
			if t.Environment != "" && p.Deploy[i].PromoteFrom == t.Environment {
				next = append(next, &p.Deploy[i])
			}
		}
	}
	return false
}

// Image returns the project's image called name.
func (p *Project) Image(name string) (*Image, bool) {
	for i := range p.Images {
		if p.Images[i].Name == name {
			return &p.Images[i], true
		}
	}
	return nil, false
}

// UpdateFor returns the update settings for service s of target d: the
// target's, with what the service sets itself on top.
func (d *Deploy) UpdateFor(s Service) Update {
	u := d.Update
	o := s.Update
	if o == nil {
		return u
	}
	if o.Parallelism != nil {
		u.Parallelism = o.Parallelism
	}
	if o.Delay.Duration != 0 {
		u.Delay = o.Delay
	}
	if o.FailureAction != "" {
		u.FailureAction = o.FailureAction
	}
	if o.Order != "" {
		u.Order = o.Order
	}
	if o.Monitor.Duration != 0 {
		u.Monitor = o.Monitor
	}
	if o.MaxFailureRatio != 0 {
		u.MaxFailureRatio = o.MaxFailureRatio
	}
	return u
}

// ServiceTarget finds the first deploy target that manages service name
// (see Manages), with its project and entry. A stack service's entry is
// named for the Swarm service and carries the update settings of its
// key, if the target lists it.
func (c *Config) ServiceTarget(name string) (*Project, *Deploy, Service, bool) {
	for i := range c.Projects {
		p := &c.Projects[i]
		for j := range p.Deploy {
			d := &p.Deploy[j]
			if !d.Manages(name) {
				continue
			}
			if d.Stack == nil {
				k := slices.IndexFunc(d.Services, func(s Service) bool { return s.Name == name })
				return p, d, d.Services[k], true
			}
			s := Service{Name: name}
			key := strings.TrimPrefix(name, d.Stack.Name+"_")
			if k := slices.IndexFunc(d.Services, func(s Service) bool { return s.Name == key }); k >= 0 {
				s.Update = d.Services[k].Update
			}
			return p, d, s, true
		}
	}
	return nil, nil, Service{}, false
}

// Manages reports whether the Swarm service name is d's: listed by an
// image-only target, or named <stack>_<key> by a stack target, which
// owns every such service whether its services list the key or not
// (stack names hold no '_'; the keys it lists are never Swarm names).
func (d *Deploy) Manages(name string) bool {
	if d.Stack != nil {
		key, ok := strings.CutPrefix(name, d.Stack.Name+"_")
		return ok && key != ""
	}
	return slices.ContainsFunc(d.Services, func(s Service) bool { return s.Name == name })
}

// Wants reports whether event is one the project is notified of.
func (n *Notify) Wants(event Event) bool { return slices.Contains(n.On, event) }

// TokenFor returns the configured token equal to given. Every token is
// compared, in constant time over equal-length hashes, so the answer's
// timing says nothing about which or how much of a token matched.
func (c *Config) TokenFor(given string) (Token, bool) {
	g := sha256.Sum256([]byte(given))
	var found Token
	match := 0
	for _, t := range c.Tokens {
		w := sha256.Sum256([]byte(t.Token))
		if subtle.ConstantTimeCompare(g[:], w[:]) == 1 {
			found, match = t, 1
		}
	}
	return found, match == 1
}
