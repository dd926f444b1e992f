package tagpolicy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func stamp(branch string, hoursAgo int) string {
	return Timestamped(branch, now.Add(-time.Duration(hoursAgo)*time.Hour))
}

func names(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Tag)
	}
	return out
}

func TestPlanRepo(t *testing.T) {
	tests := []struct {
		name       string
		tags       []Tag
		rules      []Rule
		prot       Protection
		wantDelete []string
		reasons    map[string]string // kept tag -> reason
	}{
		{
			name: "keep_last per branch, dashes in branch",
			tags: []Tag{
				{stamp("feat-a-b", 1), "d1"}, {stamp("feat-a-b", 2), "d2"}, {stamp("feat-a-b", 3), "d3"},
				{stamp("main", 1), "d4"}, {stamp("main", 2), "d5"},
			},
			rules:      []Rule{{KeepLast: 2}},
			wantDelete: []string{stamp("feat-a-b", 3)},
			reasons:    map[string]string{stamp("main", 2): KeepNewest},
		},
		{
			name: "latest and foreign tags never touched",
			tags: []Tag{
				{"main-latest", "d9"}, {"v1.0", "d8"}, {"latest", "d7"},
				{stamp("main", 1), "d1"}, {stamp("main", 2), "d2"},
			},
			rules:      []Rule{{KeepLast: 1}},
			wantDelete: []string{stamp("main", 2)},
			reasons:    map[string]string{"main-latest": KeepLatest, "v1.0": KeepOutsideScheme, "latest": KeepOutsideScheme},
		},
		{
			name: "digest shared with -latest or a foreign tag is kept",
			tags: []Tag{
				{"main-latest", "d3"}, {"release", "d2"},
				{stamp("main", 1), "d1"}, {stamp("main", 2), "d2"}, {stamp("main", 3), "d3"}, {stamp("main", 4), "d4"},
			},
			rules:      []Rule{{KeepLast: 1}},
			wantDelete: []string{stamp("main", 4)},
			reasons:    map[string]string{stamp("main", 2): KeepSharedDigest, stamp("main", 3): KeepSharedDigest},
		},
		{
			name: "protected by digest or tag, counted in keep_last",
			tags: []Tag{
				{stamp("main", 1), "d1"}, {stamp("main", 2), "d2"}, {stamp("main", 3), "d3"}, {stamp("main", 4), "d4"},
			},
			rules:      []Rule{{KeepLast: 1}},
			prot:       Protection{Digests: map[string]string{"d3": "service api runs it", "d1": "service web runs it"}, Tags: map[string]string{stamp("main", 4): "job 7 deploys it"}},
			wantDelete: []string{stamp("main", 2)},
			reasons:    map[string]string{stamp("main", 1): KeepProtected, stamp("main", 3): KeepProtected, stamp("main", 4): KeepProtectedTag},
		},
		{
			name:       "keep_within keeps young tags beyond keep_last",
			tags:       []Tag{{stamp("main", 1), "d1"}, {stamp("main", 5), "d2"}, {stamp("main", 30), "d3"}},
			rules:      []Rule{{KeepLast: 1, KeepWithin: 24 * time.Hour}},
			wantDelete: []string{stamp("main", 30)},
			reasons:    map[string]string{stamp("main", 5): KeepWithin},
		},
		{
			name: "first matching rule applies; unmatched branches are left",
			tags: []Tag{
				{stamp("feature-x", 1), "d1"}, {stamp("feature-x", 2), "d2"},
				{stamp("main", 1), "d3"}, {stamp("main", 2), "d4"},
			},
			rules:      []Rule{{Branches: []string{"feature/*"}, KeepLast: 1}},
			wantDelete: []string{stamp("feature-x", 2)},
			reasons:    map[string]string{stamp("main", 2): KeepNoRule},
		},
		{
			name:       "unresolved digest is kept",
			tags:       []Tag{{stamp("main", 1), "d1"}, {stamp("main", 2), ""}},
			rules:      []Rule{{KeepLast: 1}},
			wantDelete: nil,
			reasons:    map[string]string{stamp("main", 2): KeepUnresolved},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PlanRepo(tt.tags, tt.rules, tt.prot, now)
			if got := names(p.Delete); !slices.Equal(got, tt.wantDelete) {
				t.Errorf("delete = %v, want %v", got, tt.wantDelete)
			}
			kept := map[string]string{}
			for _, d := range p.Keep {
				kept[d.Tag] = d.Reason
			}
			for tag, want := range tt.reasons {
				if kept[tag] != want {
					t.Errorf("%s kept for %q, want %q", tag, kept[tag], want)
				}
			}
		})
	}
}

// TestPlanRepoCountsEachBranchApart: pushes to Main (or feature/x beside
// feature-x) are counted under their own component, so a flood of them
// never pushes main's rollback points out of its keep_last.
func TestPlanRepoCountsEachBranchApart(t *testing.T) {
	comp := func(branch string) string {
		c, err := BranchComponent(branch)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var tags []Tag
	for i := 10; i < 13; i++ {
		tags = append(tags, Tag{stamp(comp("main"), i), fmt.Sprintf("main%d", i)}, Tag{stamp(comp("feature-x"), i), fmt.Sprintf("fx%d", i)})
	}
	for i := 1; i < 6; i++ {
		tags = append(tags, Tag{stamp(comp("Main"), i), fmt.Sprintf("Main%d", i)}, Tag{stamp(comp("feature/x"), i), fmt.Sprintf("fsx%d", i)})
	}
	p := PlanRepo(tags, []Rule{{Branches: []string{"main", "feature/*"}, KeepLast: 3}}, Protection{}, now)
	for _, d := range p.Delete {
		if d.Branch == "main" || d.Branch == "feature-x" {
			t.Errorf("deleted %s of %s: newer pushes to another branch counted against it", d.Tag, d.Branch)
		}
	}
	if got, want := len(p.Delete), 2+2; got != want {
		t.Errorf("deleted %v, want the oldest 2 of Main and of feature/x", names(p.Delete))
	}
	// "main" and "feature/*" match the hashed components of Main and
	// feature/x by their readable part: the rule still applies to them.
	for _, b := range []string{"Main", "feature/x", "main", "feature-x"} {
		if !(Rule{Branches: []string{"main", "feature/*"}, KeepLast: 1}).Matches(comp(b)) {
			t.Errorf("rule does not match %s (%s)", b, comp(b))
		}
	}
	if (Rule{Branches: []string{"main"}, KeepLast: 1}).Matches(comp("main-x")) {
		t.Errorf("rule main matches main-x")
	}
}

func TestPlanRepoExclusive(t *testing.T) {
	tags := []Tag{{stamp("main", 1), "d1"}, {stamp("main", 2), "d2"}, {stamp("main", 3), "d2"}, {stamp("main", 4), "d4"}}
	p := PlanRepo(tags, []Rule{{KeepLast: 1}}, Protection{}, now)
	want := map[string]bool{stamp("main", 2): false, stamp("main", 3): false, stamp("main", 4): true}
	if len(p.Delete) != len(want) {
		t.Fatalf("delete = %v", names(p.Delete))
	}
	for _, d := range p.Delete {
		if d.Exclusive != want[d.Tag] {
			t.Errorf("%s exclusive = %v, want %v", d.Tag, d.Exclusive, want[d.Tag])
		}
	}
}

// TestRuleMatches pins how retention reads branch globs: in the one glob
// dialect, over a branch component, where '/' reads as '-'. A component
// has no '/' left, so '*' and '**' both cross what was one.
func TestRuleMatches(t *testing.T) {
	tests := []struct {
		glob, branch string
		want         bool
	}{
		{"feature/*", "feature/login", true},
		{"feature/*", "feature/login/fix", true},
		{"feature/**", "feature/login", true},
		{"feature/**", "feature/login/fix", true},
		{"feature/*", "features/x", false},
		{"release/1.*", "release/1.2", true},
		{"release/1.*", "release/10", false},
		{"release/1.0", "Release/1.0", true}, // a hashed component, matched by its readable part
		{"release/[0-9]*", "release/2", true},
		{"{main,develop}", "develop", true},
		{"main", "main-x", false},
	}
	for _, tt := range tests {
		comp, err := BranchComponent(tt.branch)
		if err != nil {
			t.Fatal(err)
		}
		if got := (Rule{Branches: []string{tt.glob}, KeepLast: 1}).Matches(comp); got != tt.want {
			t.Errorf("glob %q on branch %s (%s) = %v, want %v", tt.glob, tt.branch, comp, got, tt.want)
		}
	}
}

func TestRuleValidate(t *testing.T) {
	for _, r := range []Rule{{KeepLast: 0}, {KeepLast: 1, KeepWithin: -time.Hour}, {KeepLast: 1, Branches: []string{"[a"}}, {KeepLast: 1, Branches: []string{""}}} {
		if err := r.Validate(); err == nil {
			t.Errorf("%+v validated", r)
		}
	}
	if err := (Rule{KeepLast: 3, Branches: []string{"release/*"}}).Validate(); err != nil {
		t.Errorf("good rule: %v", err)
	}
}

// TestPlanRepoProperties checks the retention invariants over random
// repositories: several branches (some with dashes), digests shared
// within and across branches and with -latest and foreign tags, digests
// services run or roll back to, tags pending jobs will deploy, and
// unresolved tags.
func TestPlanRepoProperties(t *testing.T) {
	for seed := uint64(1); seed <= 500; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed*7919))
		tags, rules, prot := randomRepo(rng)
		p := PlanRepo(tags, rules, prot, now)
		if err := checkPlan(tags, rules, prot, p); err != nil {
			t.Fatalf("seed %d: %v\ntags %v\nrules %+v\nprot %+v", seed, err, tags, rules, prot)
		}
	}
}

func randomRepo(rng *rand.Rand) ([]Tag, []Rule, Protection) {
	branches := []string{"main", "feat-a-b", "release-1.2", "fix", "feature-login", "x"}[:2+rng.IntN(5)]
	digests := 5 + rng.IntN(40)
	digest := func() string { return fmt.Sprintf("sha256:%064d", rng.IntN(digests)) }
	var tags []Tag
	seen := map[string]bool{}
	add := func(name, d string) {
		if !seen[name] {
			seen[name] = true
			tags = append(tags, Tag{name, d})
		}
	}
	for _, b := range branches {
		for n := rng.IntN(30); n > 0; n-- {
			d := digest()
			if rng.IntN(20) == 0 {
				d = "" // unresolved
			}
			add(Timestamped(b, now.Add(-time.Duration(rng.IntN(24*60))*time.Minute*10)), d)
		}
		if rng.IntN(2) == 0 {
			add(Latest(b), digest())
		}
	}
	for _, foreign := range []string{"v1.0", "latest", "stable", "main-2026", "20261127120000"} {
		if rng.IntN(3) == 0 {
			add(foreign, digest())
		}
	}
	rng.Shuffle(len(tags), func(i, j int) { tags[i], tags[j] = tags[j], tags[i] })

	var rules []Rule
	if rng.IntN(2) == 0 {
		rules = append(rules, Rule{Branches: []string{"feat*", "release/*"}, KeepLast: 1 + rng.IntN(3)})
	}
	last := Rule{KeepLast: 1 + rng.IntN(12)}
	if rng.IntN(2) == 0 {
		last.KeepWithin = time.Duration(rng.IntN(200)) * time.Hour
	}
	if rng.IntN(4) == 0 {
		last.Branches = []string{"main", "f*"} // leaves some branches without a rule
	}
	rules = append(rules, last)

	var prot Protection
	for n := rng.IntN(6); n > 0; n-- {
		prot.Protect("", digest(), "service runs it")
	}
	for n := rng.IntN(3); n > 0; n-- {
		prot.Protect("", digest(), "previous spec of a service")
	}
	for n := rng.IntN(3); n > 0 && len(tags) > 0; n-- {
		prot.Protect(tags[rng.IntN(len(tags))].Name, "", "queued job deploys it")
	}
	return tags, rules, prot
}

// checkPlan verifies every invariant PlanRepo promises.
func checkPlan(tags []Tag, rules []Rule, prot Protection, p Plan) error {
	if len(p.Keep)+len(p.Delete) != len(tags) {
		return fmt.Errorf("%d kept + %d deleted != %d tags", len(p.Keep), len(p.Delete), len(tags))
	}
	digestOf := map[string]string{}
	refs := map[string]int{}
	for _, t := range tags {
		digestOf[t.Name] = t.Digest
		refs[t.Digest]++
	}
	keptDigests := map[string]bool{}
	kept := map[string]Decision{}
	for _, d := range p.Keep {
		kept[d.Tag] = d
		keptDigests[digestOf[d.Tag]] = true
	}
	for _, d := range p.Delete {
		if _, ok := kept[d.Tag]; ok {
			return fmt.Errorf("%s both kept and deleted", d.Tag)
		}
		comp, _, ok := ParseTimestamped(d.Tag)
		switch {
		case !ok || IsLatest(d.Tag):
			return fmt.Errorf("deleted %s, outside the scheme", d.Tag)
		case d.Digest == "" || d.Digest != digestOf[d.Tag]:
			return fmt.Errorf("deleted %s with digest %q, input has %q", d.Tag, d.Digest, digestOf[d.Tag])
		case prot.Digests[d.Digest] != "" || prot.Tags[d.Tag] != "":
			return fmt.Errorf("deleted protected %s", d.Tag)
		case keptDigests[d.Digest]:
			return fmt.Errorf("deleted %s, whose digest a kept tag shares", d.Tag)
		case !slices.ContainsFunc(rules, func(r Rule) bool { return r.Matches(comp) }):
			return fmt.Errorf("deleted %s, whose branch no rule matches", d.Tag)
		case d.Exclusive != (refs[d.Digest] == 1):
			return fmt.Errorf("deleted %s exclusive=%v with %d references", d.Tag, d.Exclusive, refs[d.Digest])
		}
	}
	// keep_last and keep_within, per branch, with the first matching rule.
	byBranch := map[string][]Tag{}
	for _, t := range tags {
		if comp, _, ok := ParseTimestamped(t.Name); ok && !IsLatest(t.Name) {
			byBranch[comp] = append(byBranch[comp], t)
		}
	}
	for comp, ts := range byBranch {
		i := slices.IndexFunc(rules, func(r Rule) bool { return r.Matches(comp) })
		if i < 0 {
			continue
		}
		r := rules[i]
		slices.SortFunc(ts, func(a, b Tag) int {
			_, ta, _ := ParseTimestamped(a.Name)
			_, tb, _ := ParseTimestamped(b.Name)
			return tb.Compare(ta)
		})
		for rank, t := range ts {
			_, at, _ := ParseTimestamped(t.Name)
			d, isKept := kept[t.Name]
			newest := rank < r.KeepLast
			young := r.KeepWithin > 0 && at.After(now.Add(-r.KeepWithin))
			if (newest || young) && !isKept {
				return fmt.Errorf("%s (rank %d in %s) deleted against keep_last %d / keep_within %s", t.Name, rank, comp, r.KeepLast, r.KeepWithin)
			}
			// Nothing is kept without a reason that holds.
			needed := newest || young || t.Digest == "" || prot.Tags[t.Name] != "" || prot.Digests[t.Digest] != ""
			if isKept && !needed && d.Reason != KeepSharedDigest {
				return fmt.Errorf("%s kept for %q, but no reason holds", t.Name, d.Reason)
			}
		}
	}
	return nil
}
