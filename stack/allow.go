package stack

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// shape is what a compose mapping may hold: fixed keys (keys), or any
// names each holding an each (a map of user-named entries). A nil shape
// allows any value; a sequence is checked item by item against its shape.
type shape struct {
	keys map[string]*shape
	each *shape
}

// leaf allows any value.
var leaf = (*shape)(nil)

func fields(names ...string) map[string]*shape {
	m := make(map[string]*shape, len(names))
	for _, n := range names {
		m[n] = leaf
	}
	return m
}

func with(m map[string]*shape, key string, s *shape) map[string]*shape {
	m[key] = s
	return m
}

// fileRef is a service's long-syntax config or secret reference.
var fileRef = &shape{keys: fields("source", "target", "uid", "gid", "mode")}

// allowed is every key a stack file may use. Anything else is refused
// naming its line: build (swarmhook builds), volume drivers and their
// options (the local driver's o: bind mounts a host path), privileged,
// cap_add, devices, network_mode, pid, ipc, userns_mode, security_opt,
// sysctls, env_file and label_file (files on swarmhook's host), extends
// and include (other files), external and name on networks, configs,
// secrets and volumes (resources outside the stack's namespace),
// update_config and rollback_config (the target's settings apply).
// Bind mounts, which the short volume syntax cannot tell apart by key,
// are refused by convert.
var allowed = &shape{keys: map[string]*shape{
	"version": leaf,
	"services": {each: &shape{keys: func() map[string]*shape {
		m := fields("image", "command", "entrypoint", "environment", "labels", "working_dir", "user",
			"stop_grace_period", "stop_signal", "hostname", "read_only", "init")
		m["healthcheck"] = &shape{keys: fields("test", "interval", "timeout", "retries", "start_period", "start_interval", "disable")}
		m["networks"] = &shape{each: &shape{keys: fields("aliases")}}
		m["configs"] = fileRef
		m["secrets"] = fileRef
		m["ports"] = &shape{keys: fields("target", "published", "protocol", "mode")}
		// Named volumes and tmpfs only: a bind (short syntax /host:/x or
		// ./x:/y, or type: bind) is refused when the file is converted.
		m["volumes"] = &shape{keys: fields("type", "source", "target", "read_only")}
		m["deploy"] = &shape{keys: func() map[string]*shape {
			d := fields("mode", "replicas", "labels", "endpoint_mode")
			d["resources"] = &shape{keys: map[string]*shape{
				"limits":       {keys: fields("cpus", "memory", "pids")},
				"reservations": {keys: fields("cpus", "memory")},
			}}
			d["restart_policy"] = &shape{keys: fields("condition", "delay", "max_attempts", "window")}
			d["placement"] = &shape{keys: with(fields("constraints", "max_replicas_per_node"),
				"preferences", &shape{keys: fields("spread")})}
			return d
		}()}
		return m
	}()}},
	"networks": {each: &shape{keys: with(fields("driver", "attachable", "internal"), "labels", leaf)}},
	"configs":  {each: &shape{keys: fields("file", "content", "labels")}},
	// No driver or driver_opts: the local driver's o: bind, device: /
	// would mount any host path.
	"volumes": {each: &shape{keys: fields("labels")}},
	"secrets": {each: &shape{keys: fields("file", "environment", "labels")}},
}}

// maxNodes bounds the walk, so aliases nested into a billion laughs
// cost a bounded amount of work.
const maxNodes = 100_000

// RefusedError is a key of the stack file swarmhook does not accept.
type RefusedError struct {
	File string
	Line int
	Path string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s:%d: %s is not allowed in a stack file swarmhook deploys (see docs/security.md)", e.File, e.Line, e.Path)
}

// checkKeys walks the parsed file and returns a *RefusedError for the
// first key the allow-list lacks. Extension keys (x-...) are allowed.
func checkKeys(file string, doc *yaml.Node) error {
	w := walker{file: file}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: a stack file is a mapping with services:", file, doc.Line)
	}
	return w.walk(doc, allowed, "")
}

type walker struct {
	file  string
	nodes int
}

func (w *walker) walk(n *yaml.Node, s *shape, path string) error {
	if w.nodes++; w.nodes > maxNodes {
		return fmt.Errorf("%s: more than %d YAML nodes", w.file, maxNodes)
	}
	if n.Kind == yaml.AliasNode {
		return w.walk(n.Alias, s, path)
	}
	if s == nil {
		return nil
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if err := w.walk(c, s, path); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" {
				if err := w.walk(v, s, path); err != nil {
					return err
				}
				continue
			}
			if strings.HasPrefix(k.Value, "x-") {
				continue
			}
			child := path + k.Value
			if s.each != nil {
				if err := w.walk(v, s.each, child+"."); err != nil {
					return err
				}
				continue
			}
			sub, ok := s.keys[k.Value]
			if !ok {
				return &RefusedError{File: w.file, Line: k.Line, Path: child}
			}
			if err := w.walk(v, sub, child+"."); err != nil {
				return err
			}
		}
	}
	return nil
}
