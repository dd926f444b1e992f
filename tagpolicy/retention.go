package tagpolicy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
)

// DefaultKeepLast is how many timestamped tags of each branch a rule keeps
// when it does not say: ten rollback points cover a few weeks of a busy
// branch and cost little space, since images of one branch share layers.
const DefaultKeepLast = 10

// Rule says how many timestamped tags of the branches it matches to keep.
// A tag is kept when either bound keeps it: it is one of the newest
// KeepLast of its branch, or it is younger than KeepWithin.
type Rule struct {
	// Branches are globs over branch components, in the dialect of
	// branch globs elsewhere (github.com/bmatcuk/doublestar/v4), with '/'
	// read as '-' as in the component: "feature/*" matches the component
	// "feature-login-<hash>" of the branch feature/login, and so does
	// "feature/**", since a component has no '/' left to stop '*'. A hashed
	// component (see BranchComponent) is matched with and without its
	// hash, so "release/v1" matches the branch release/v1. Empty matches
	// every branch. A rule only chooses how many tags to keep: each
	// component still counts its own.
	Branches []string `json:"branches,omitempty"`
	// KeepLast is how many of the newest tags of each branch to keep;
	// at least 1.
	KeepLast int `json:"keep_last"`
	// KeepWithin keeps every tag younger than this; 0 keeps none by age.
	KeepWithin time.Duration `json:"keep_within,omitempty"`
}

// DefaultRule keeps the newest DefaultKeepLast tags of every branch.
func DefaultRule() Rule { return Rule{KeepLast: DefaultKeepLast} }

// ErrBadRule is returned by Rule.Validate.
var ErrBadRule = errors.New("tagpolicy: bad retention rule")

// Validate checks that the rule keeps something and that its globs parse.
func (r Rule) Validate() error {
	if r.KeepLast < 1 {
		return fmt.Errorf("%w: keep_last %d must be at least 1: a branch always keeps a rollback point", ErrBadRule, r.KeepLast)
	}
	if r.KeepWithin < 0 {
		return fmt.Errorf("%w: keep_within %s is negative", ErrBadRule, r.KeepWithin)
	}
	for _, g := range r.Branches {
		if g == "" || !doublestar.ValidatePattern(normalizeGlob(g)) {
			return fmt.Errorf("%w: branch glob %q is not a valid pattern", ErrBadRule, g)
		}
	}
	return nil
}

// normalizeGlob reads a branch glob the way BranchComponent reads a
// branch: lower case, '/' as '-'.
func normalizeGlob(g string) string {
	return strings.ReplaceAll(strings.ToLower(g), "/", "-")
}

// Matches reports whether the rule applies to a branch component.
func (r Rule) Matches(component string) bool {
	if len(r.Branches) == 0 {
		return true
	}
	names := []string{component}
	if hashed(component) {
		names = append(names, component[:len(component)-HashLen-1])
	}
	for _, g := range r.Branches {
		for _, name := range names {
			if doublestar.MatchUnvalidated(normalizeGlob(g), name) {
				return true
			}
		}
	}
	return false
}

// Tag is one tag of a repository and the manifest digest it points at.
// An empty Digest means it could not be resolved.
type Tag struct {
	Name   string `json:"tag"`
	Digest string `json:"digest"`
}

// Protection is what must survive a prune, whatever the rules say, with
// the reason for each entry ("service api runs it").
type Protection struct {
	// Digests are manifests in use: services run them now, are their
	// previous (rollback) spec, or a job is about to deploy them.
	Digests map[string]string
	// Tags are tag names in use in the same ways.
	Tags map[string]string
}

// Protect records that digest (if not empty) and tag (if not empty) must
// be kept for reason. The first reason given for each wins.
func (p *Protection) Protect(tag, digest, reason string) {
	if p.Digests == nil {
		p.Digests = map[string]string{}
	}
	if p.Tags == nil {
		p.Tags = map[string]string{}
	}
	if digest != "" {
		if _, ok := p.Digests[digest]; !ok {
			p.Digests[digest] = reason
		}
	}
	if tag != "" {
		if _, ok := p.Tags[tag]; !ok {
			p.Tags[tag] = reason
		}
	}
}

// Why a tag is kept. Each kept tag carries exactly one, the first that
// applied in this order.
const (
	KeepOutsideScheme = "outside the <branch>-<timestamp> scheme"
	KeepLatest        = "moving -latest tag"
	KeepNoRule        = "no retention rule matches its branch"
	KeepUnresolved    = "digest could not be resolved"
	KeepProtectedTag  = "protected tag"
	KeepProtected     = "protected digest"
	KeepNewest        = "among the newest keep_last of its branch"
	KeepWithin        = "younger than keep_within"
	KeepSharedDigest  = "shares its digest with a kept tag"
)

// Decision is the fate of one tag.
type Decision struct {
	Tag    string `json:"tag"`
	Digest string `json:"digest,omitempty"`
	// Branch is the tag's branch component; empty outside the scheme.
	Branch string `json:"branch,omitempty"`
	// Reason says why a kept tag is kept (one of the Keep* constants);
	// Detail adds the specifics (which service, which tag it shares with).
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Exclusive is set on deletions whose digest no other tag of the
	// repository points at: deleting the manifest itself removes nothing
	// else.
	Exclusive bool `json:"exclusive,omitempty"`
}

// Plan is what a prune of one repository does.
type Plan struct {
	Delete []Decision `json:"delete"`
	Keep   []Decision `json:"keep"`
}

// PlanRepo decides which tags of one repository to delete. rules are
// tried in order and the first matching a tag's branch applies; branches
// no rule matches are left alone. now is the clock keep_within counts
// back from.
//
// Guarantees, whatever the input: tags outside the scheme and -latest
// tags are kept; tags or digests in prot are kept; an unresolved tag is
// kept; no deleted tag shares its digest with a kept tag; each branch
// keeps its newest KeepLast tags and every tag younger than KeepWithin.
func PlanRepo(tags []Tag, rules []Rule, prot Protection, now time.Time) Plan {
	type cand struct {
		Decision
		at   time.Time
		rule int
	}
	var plan Plan
	keepDigest := map[string]string{} // digest -> a kept tag pointing at it
	keep := func(d Decision, reason, detail string) {
		d.Reason, d.Detail = reason, detail
		plan.Keep = append(plan.Keep, d)
		if d.Digest != "" {
			if _, ok := keepDigest[d.Digest]; !ok {
				keepDigest[d.Digest] = d.Tag
			}
		}
	}
	byBranch := map[string][]cand{}
	for _, t := range tags {
		d := Decision{Tag: t.Name, Digest: t.Digest}
		if IsLatest(t.Name) {
			keep(d, KeepLatest, "")
			continue
		}
		comp, at, ok := ParseTimestamped(t.Name)
		if !ok {
			keep(d, KeepOutsideScheme, "")
			continue
		}
		d.Branch = comp
		rule := slices.IndexFunc(rules, func(r Rule) bool { return r.Matches(comp) })
		if rule < 0 {
			keep(d, KeepNoRule, "")
			continue
		}
		byBranch[comp] = append(byBranch[comp], cand{Decision: d, at: at, rule: rule})
	}

	// Protected and unresolved tags take their place in the ranking like
	// any other: keep_last counts them, so a branch keeps exactly its
	// newest KeepLast plus whatever older tags something still needs.
	var maybe []cand
	for _, branch := range sortedKeys(byBranch) {
		cs := byBranch[branch]
		slices.SortFunc(cs, func(a, b cand) int {
			return cmp.Or(b.at.Compare(a.at), strings.Compare(b.Tag, a.Tag))
		})
		for i, c := range cs {
			r := rules[c.rule]
			switch {
			case c.Digest == "":
				keep(c.Decision, KeepUnresolved, "")
			case prot.Tags[c.Tag] != "":
				keep(c.Decision, KeepProtectedTag, prot.Tags[c.Tag])
			case prot.Digests[c.Digest] != "":
				keep(c.Decision, KeepProtected, prot.Digests[c.Digest])
			case i < r.KeepLast:
				keep(c.Decision, KeepNewest, fmt.Sprintf("keep_last %d", r.KeepLast))
			case r.KeepWithin > 0 && c.at.After(now.Add(-r.KeepWithin)):
				keep(c.Decision, KeepWithin, fmt.Sprintf("keep_within %s", r.KeepWithin))
			default:
				maybe = append(maybe, c)
			}
		}
	}
	// Sharing: a candidate whose manifest a kept tag needs stays. Adding
	// it adds no new digest, so one pass settles it.
	refs := map[string]int{}
	for _, t := range tags {
		refs[t.Digest]++
	}
	for _, c := range maybe {
		if other, ok := keepDigest[c.Digest]; ok {
			keep(c.Decision, KeepSharedDigest, "shared with "+other)
			continue
		}
		c.Exclusive = refs[c.Digest] == 1
		plan.Delete = append(plan.Delete, c.Decision)
	}
	slices.SortFunc(plan.Keep, func(a, b Decision) int { return strings.Compare(a.Tag, b.Tag) })
	slices.SortFunc(plan.Delete, func(a, b Decision) int { return strings.Compare(a.Tag, b.Tag) })
	return plan
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
