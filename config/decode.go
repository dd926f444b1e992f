package config

import (
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Warning is a setting that works but weakens swarmhook; start-up logs it.
// It never holds a secret.
type Warning struct {
	// Line is the line of the file it is about; 0 for the file as a whole.
	Line int
	// Field is the key path, e.g. projects[0].secret; empty for the file.
	Field string
	// Message says what is wrong and what to do about it.
	Message string
}

// String puts the warning as errors are put: line, field, message.
func (w Warning) String() string { return at(w.Line, w.Field) + w.Message }

// at is the "line 7: projects[0].secret: " that starts every message.
func at(line int, field string) string {
	var b strings.Builder
	if line > 0 {
		fmt.Fprintf(&b, "line %d: ", line)
	}
	if field != "" {
		b.WriteString(field + ": ")
	}
	return b.String()
}

// findings collects what Load finds, each placed at its line in the file
// and named by its key path, never by a Go type.
type findings struct {
	// lines maps a key path (projects[0].secret) to the line of its key,
	// or of the list item, in the file as written.
	lines    map[string]int
	errs     []error
	warnings []Warning
	// emptySecrets are secrets written as ${VAR} that came out empty.
	emptySecrets []envSecret
	// inline are the paths of secrets written into the file itself.
	inline []string
	// vars are the variables each expanded scalar used.
	vars map[*yaml.Node][]string
	// visited counts the values scanned, up to maxValues.
	visited int
}

// envSecret is a secret field whose value came from variables.
type envSecret struct {
	field string
	vars  []string
}

func newFindings() *findings {
	return &findings{lines: map[string]int{}, vars: map[*yaml.Node][]string{}}
}

// lineOf is the line of field, or of the nearest key above it that is in
// the file (defaults are not); 0 when none is.
func (f *findings) lineOf(field string) int {
	for p := field; p != ""; {
		if l, ok := f.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// bad records an error about field at its line.
func (f *findings) bad(field, format string, args ...any) {
	f.badAt(f.lineOf(field), field, format, args...)
}

// badAt records an error about field at line.
func (f *findings) badAt(line int, field, format string, args ...any) {
	f.errs = append(f.errs, errors.New(at(line, field)+fmt.Sprintf(format, args...)))
}

// warn records a warning about field at its line.
func (f *findings) warn(field, format string, args ...any) {
	f.warnings = append(f.warnings, Warning{Line: f.lineOf(field), Field: field, Message: fmt.Sprintf(format, args...)})
}

var (
	durationType = reflect.TypeFor[Duration]()
	globType     = reflect.TypeFor[Glob]()
	serviceType  = reflect.TypeFor[Service]()
)

// maxValues bounds the values scan visits, aliases counted each time they
// are used: a large configuration has a few thousand, and a file of aliases
// to aliases could otherwise stand for billions.
const maxValues = 1 << 18

// scan expands ${VAR} inside n's scalars and checks n against type t
// before it is decoded: every key known, every value of the right kind,
// every line recorded. Expanding in place after parsing keeps each line
// the file's own, whatever the variables hold. Fields tagged secret:"true"
// are secrets: their values are never repeated, and where they came from
// (the file or the environment) is noted.
func (f *findings) scan(n *yaml.Node, t reflect.Type, path string, secret bool, lookup LookupFunc) {
	if f.visited++; f.visited == maxValues {
		f.badAt(n.Line, path, "the file stands for more than %d values; are aliases nested too deep?", maxValues)
	}
	if f.visited >= maxValues {
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode {
		if !f.expand(n, path, lookup) {
			return
		}
		if n.ShortTag() == "!!null" {
			f.noteSecret(n, path, secret)
			return // the zero value, as if the key were left out
		}
	}
	switch {
	case t == durationType || t == globType:
		if n.Kind != yaml.ScalarNode {
			f.badAt(n.Line, path, "expected %s, got %s", kindWord(t), f.describe(n, secret))
			return
		}
		if err := reflect.New(t).Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			f.badAt(n.Line, path, "%v", err)
		}
		return
	case t == serviceType && n.Kind == yaml.ScalarNode:
		return // a plain service name
	case t == serviceType && n.Kind == yaml.SequenceNode:
		// A group of services that roll out at the same time.
		if len(n.Content) == 0 {
			f.badAt(n.Line, path, "an empty group: list the services that roll out together, or remove it")
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			f.lines[p] = item.Line
			if item.Kind == yaml.SequenceNode || item.Kind == yaml.AliasNode && item.Alias != nil && item.Alias.Kind == yaml.SequenceNode {
				f.badAt(item.Line, p, "a group holds services, not groups")
				continue
			}
			f.scan(item, serviceType, p, false, lookup)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		f.scanMapping(n, t, path, lookup)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			f.badAt(n.Line, path, "expected a list, got %s", f.describe(n, secret))
			return
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			f.lines[p] = item.Line
			f.scan(item, t.Elem(), p, secret, lookup)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			f.badAt(n.Line, path, "expected a mapping, got %s", f.describe(n, secret))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if !f.expand(k, path, lookup) {
				continue
			}
			p := path + "." + k.Value
			if first, dup := seen[k.Value]; dup {
				f.badAt(k.Line, p, "set twice (first on line %d)", first)
				continue
			}
			seen[k.Value] = k.Line
			f.lines[p] = k.Line
			f.scan(v, t.Elem(), p, secret, lookup)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			f.badAt(n.Line, path, "expected %s, got %s", kindWord(t), f.describe(n, secret))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			f.badAt(n.Line, path, "expected %s, got %s", kindWord(t), f.describe(n, secret))
			return
		}
		f.noteSecret(n, path, secret)
	}
}

// scanMapping checks the keys of a mapping decoded into struct type t.
func (f *findings) scanMapping(n *yaml.Node, t reflect.Type, path string, lookup LookupFunc) {
	fields, names := yamlFields(t)
	if n.Kind != yaml.MappingNode {
		f.badAt(n.Line, path, "expected a mapping with keys %s, got %s", strings.Join(names, ", "), f.describe(n, false))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			f.scanMerge(v, t, path, lookup)
			continue
		}
		sf, ok := fields[k.Value]
		if !ok {
			where := " in " + path
			if path == "" {
				where = " at the top level"
			}
			f.badAt(k.Line, "", "unknown key %q%s (known: %s)", k.Value, where, strings.Join(names, ", "))
			continue
		}
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		if first, dup := seen[k.Value]; dup {
			f.badAt(k.Line, p, "set twice (first on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		f.lines[p] = k.Line
		f.scan(v, sf.Type, p, sf.Tag.Get("secret") == "true", lookup)
	}
}

// scanMerge checks what a "<<: *anchor" merges into a mapping.
func (f *findings) scanMerge(v *yaml.Node, t reflect.Type, path string, lookup LookupFunc) {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind == yaml.SequenceNode {
		for _, m := range v.Content {
			f.scanMerge(m, t, path, lookup)
		}
		return
	}
	f.scanMapping(v, t, path, lookup)
}

// yamlFields maps the YAML keys of struct type t to its fields, and lists
// the keys in the order they are declared.
func yamlFields(t reflect.Type) (map[string]reflect.StructField, []string) {
	fields := map[string]reflect.StructField{}
	var names []string
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		fields[name] = sf
		names = append(names, name)
	}
	return fields, names
}

// noteSecret records where a secret's value came from: an empty one from
// variables is refused later, one written into the file counts against a
// file others can read.
func (f *findings) noteSecret(n *yaml.Node, path string, secret bool) {
	if !secret {
		return
	}
	switch vars := f.vars[n]; {
	case len(vars) > 0 && n.Value == "":
		f.emptySecrets = append(f.emptySecrets, envSecret{field: path, vars: vars})
	case len(vars) == 0 && n.Value != "":
		f.inline = append(f.inline, path)
	}
}

// describe names what n holds for an error: its kind, or its value when
// that was written in the file and is no secret.
func (f *findings) describe(n *yaml.Node, secret bool) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if vars := f.vars[n]; len(vars) > 0 {
		return "the value of ${" + strings.Join(vars, "}${") + "}"
	}
	if secret {
		return "a secret"
	}
	return fmt.Sprintf("%q", n.Value)
}

// kindWord says in YAML's words what a value of type t looks like.
func kindWord(t reflect.Type) string {
	switch t {
	case durationType:
		return "a duration like 30s or 5m"
	case globType:
		return "a pattern like main or release/*"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	}
	return "a mapping"
}

// varList names, for a message, the variables of an empty secret, with
// their verb: "${A} is", "${A}, ${B} are".
func (e envSecret) varList() string {
	vars := slices.Compact(slices.Clone(e.vars))
	verb := " is"
	if len(vars) > 1 {
		verb = " are"
	}
	return "${" + strings.Join(vars, "}, ${") + "}" + verb
}

// checkMode warns when the file, of mode mode, may be read by every user
// on the host while it holds secrets itself. A warning, not an error:
// Docker mounts Swarm configs 0444 by default, and refusing would stop
// such set-ups that work. Group read is fine: root:swarmhook 0640 is the
// usual way to share the file with the service alone.
func (f *findings) checkMode(mode fs.FileMode) {
	if !mode.IsRegular() || mode.Perm()&0o004 == 0 || len(f.inline) == 0 {
		return
	}
	where := make([]string, len(f.inline))
	for i, p := range f.inline {
		where[i] = fmt.Sprintf("%s (line %d)", p, f.lines[p])
	}
	f.warnings = append(f.warnings, Warning{Message: fmt.Sprintf(
		"every user can read this file (mode %04o) and it holds secrets itself: %s; chmod o-r it (docker config: mode=0400), or move them to ${VAR}",
		mode.Perm(), strings.Join(where, ", "))})
}
