// Package config loads swarmhook's YAML configuration.
//
// Load reads from an io.Reader, so tests need no files. String values may
// name environment variables as ${VAR}, so secrets stay out of the file;
// they are expanded inside each parsed value, so every line stays the
// file's own. Unknown keys, bad values, missing variables and secrets set
// empty through one are errors that name the key path as written in YAML
// and its line, never a Go type nor a secret; defaults are filled in
// explicitly: a configuration that loads is one swarmhook can run. What
// works but weakens swarmhook (a short webhook secret, secrets in a file
// every user can read) comes back as Warnings for the caller to log.
//
// Each step of Load has a file of its name: load.go (read, parse, decode),
// expand.go (${VAR}), decode.go (check the parsed YAML against the types,
// keeping every line the file's), defaults.go (what the file left out)
// and validate.go (each section checks itself). types.go holds the
// types, enums.go the settings with a fixed set of values, glob.go the
// one pattern dialect for branch and tag names, and lookup.go what the
// rest of swarmhook asks of a loaded Config.
package config
