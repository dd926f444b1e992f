package config

import (
	"errors"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Glob is a branch pattern: '*' matches within one path segment, '**'
// across '/', '?' one character.
type Glob struct {
	pattern string
	re      *regexp.Regexp
}

// NewGlob compiles a pattern.
func NewGlob(pattern string) (Glob, error) {
	if pattern == "" {
		return Glob{}, errors.New("pattern is empty")
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			if i+1 < len(pattern) && pattern[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return Glob{pattern: pattern, re: regexp.MustCompile(b.String())}, nil
}

// MustGlob is NewGlob for patterns known to be valid.
func MustGlob(pattern string) Glob {
	g, err := NewGlob(pattern)
	if err != nil {
		panic(err)
	}
	return g
}

// Match reports whether name matches the pattern.
func (g Glob) Match(name string) bool { return g.re != nil && g.re.MatchString(name) }

// String returns the pattern as written.
func (g Glob) String() string { return g.pattern }

// UnmarshalYAML compiles the pattern.
func (g *Glob) UnmarshalYAML(n *yaml.Node) error {
	v, err := NewGlob(n.Value)
	if err != nil {
		return err
	}
	*g = v
	return nil
}

// MarshalYAML writes the pattern back.
func (g Glob) MarshalYAML() (any, error) { return g.pattern, nil }
