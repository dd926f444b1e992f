package config

import (
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LookupFunc finds an environment variable; os.LookupEnv in production.
type LookupFunc func(key string) (string, bool)

// envName is what a variable's name may be.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces each ${VAR} (or $VAR, as os.Expand reads them) in scalar
// n with the variable's value, once, and lets the result be read as if
// written plainly (so ${N} can be a number). It reports false, with an
// error, when a variable is not set. A '$' that starts no variable name
// ($$, $1, a '$' before a space or at the end) stays as written.
func (f *findings) expand(n *yaml.Node, path string, lookup LookupFunc) bool {
	if _, done := f.vars[n]; done || n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, "$") {
		return true
	}
	var used, missing []string
	v := os.Expand(n.Value, func(key string) string {
		if !envName.MatchString(key) {
			if len(key) == 1 {
				return "$" + key // $$, $1, $*: os.Expand's shell specials
			}
			return "${" + key + "}"
		}
		used = append(used, key)
		v, ok := lookup(key)
		if !ok {
			missing = append(missing, key)
		}
		return v
	})
	f.vars[n] = used
	if len(missing) > 0 {
		f.badAt(n.Line, path, "environment variable %s is not set", strings.Join(missing, ", "))
		return false
	}
	if len(used) == 0 {
		return true
	}
	n.Value = v
	if n.Style&yaml.TaggedStyle == 0 {
		n.Tag, n.Style = "", 0
		if v != "" && n.ShortTag() == "!!null" {
			// A variable holding "null" or "~" means those characters.
			n.Tag, n.Style = "!!str", yaml.DoubleQuotedStyle
		}
	}
	return true
}
