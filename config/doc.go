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
package config
