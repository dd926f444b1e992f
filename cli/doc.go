// Package cli is swarmhook's command-line client: "swarmhook jobs",
// "swarmhook rollback shop_api --to TAG" and the other commands that
// talk to a running server through its API (package client).
//
// Every command is one entry of a table (commands.go): its arguments,
// its own flags and the client call it makes. A command that starts or
// continues a job takes -wait, and then exits with the job's outcome.
// The server and token come from -url and -token-file, or from
// SWARMHOOK_URL and SWARMHOOK_TOKEN; no flag takes the token itself, so
// it never shows in the process list.
package cli
