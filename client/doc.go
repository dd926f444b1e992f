// Package client is a typed client of swarmhook's JSON API (/api): jobs,
// logs, services, rollback candidates and the actions that start jobs.
//
// It speaks HTTP only and imports nothing of the server's, so the CLI
// (package cli) that uses it never links the Docker SDK; its types
// mirror the API's JSON and keep each record's raw JSON for callers that
// print it as the server sent it.
package client
