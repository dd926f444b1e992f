package config

import "regexp"

// BuildArgPlaceholders are the names build arg values may use as
// {{name}}: the pushed commit, its first 12 characters, the branch (or tag)
// name, the build's UTC timestamp as in the image tag, and the timestamped
// tag itself.
var BuildArgPlaceholders = []string{"commit", "short_commit", "branch", "timestamp", "tag"}

// placeholder matches one {{name}} in a build arg value.
var placeholder = regexp.MustCompile(`\{\{\s*([A-Za-z_]+)\s*\}\}`)

// ExpandPlaceholders replaces every {{name}} in v with vars[name]; unknown
// names are left as written (Load refuses them).
func ExpandPlaceholders(v string, vars map[string]string) string {
	return placeholder.ReplaceAllStringFunc(v, func(m string) string {
		if r, ok := vars[placeholder.FindStringSubmatch(m)[1]]; ok {
			return r
		}
		return m
	})
}
