// Package config loads swarmhook's YAML configuration.
//
// Load reads from an io.Reader, so tests need no files. String values may
// name environment variables as ${VAR}, expanded before decoding so secrets
// stay out of the file. Unknown keys, bad values and missing variables are
// errors that name the field, and defaults are filled in explicitly: a
// configuration that loads is one swarmhook can run.
package config
