package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// Load reads, expands, defaults and validates a configuration. Errors
// name the key path as written in YAML and its line in the file, and never
// repeat a secret. Secrets written as ${VAR} must not come out empty, API
// tokens must be unique, and a service belongs to one project. When r is a
// file (it has a Stat method), Load also warns if every user may read it
// while it holds secrets itself rather than as ${VAR}; see Warnings.
func Load(r io.Reader, lookup LookupFunc) (*Config, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	var c Config
	f := newFindings()
	if len(doc.Content) > 0 {
		root := doc.Content[0]
		f.scan(root, reflect.TypeFor[Config](), "", false, lookup)
		if len(f.errs) > 0 {
			return nil, errors.Join(f.errs...)
		}
		if err := root.Decode(&c); err != nil {
			return nil, fmt.Errorf("decode config: %w", err)
		}
	}
	if file, ok := r.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := file.Stat(); err == nil {
			f.checkMode(fi.Mode())
		}
	}
	c.applyDefaults()
	c.validate(f)
	if len(f.errs) > 0 {
		return nil, errors.Join(f.errs...)
	}
	c.warnings = f.warnings
	return &c, nil
}
