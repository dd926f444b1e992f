package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"go.yaml.in/yaml/v3"
)

// Glob is a pattern over branch or tag names, in the one dialect
// swarmhook uses wherever it matches names (here, and tagpolicy's
// retention rules): github.com/bmatcuk/doublestar/v4. '*' matches within
// one '/'-separated segment, '**' as a whole segment any number of
// segments (none included: feature/** matches feature too), '?' one
// character but '/', [a-z] one of a class, {a,b} either alternative, and
// '\' escapes the next character.
type Glob struct {
	pattern string
}

// NewGlob checks a pattern.
func NewGlob(pattern string) (Glob, error) {
	if pattern == "" {
		return Glob{}, errors.New("pattern is empty")
	}
	if !doublestar.ValidatePattern(pattern) {
		return Glob{}, fmt.Errorf("%q is not a valid pattern", pattern)
	}
	return Glob{pattern: pattern}, nil
}

// MustGlob is NewGlob for patterns known to be valid.
func MustGlob(pattern string) Glob {
	g, err := NewGlob(pattern)
	if err != nil {
		panic(err)
	}
	return g
}

// Match reports whether name matches the pattern; the zero Glob matches
// nothing.
func (g Glob) Match(name string) bool {
	return g.pattern != "" && doublestar.MatchUnvalidated(g.pattern, name)
}

// Literal reports whether the pattern matches exactly one name, itself:
// it holds none of the characters that make it a pattern.
func (g Glob) Literal() bool { return !strings.ContainsAny(g.pattern, `*?[{\`) }

// String returns the pattern as written.
func (g Glob) String() string { return g.pattern }

// UnmarshalYAML checks the pattern.
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
