// Package server is swarmhook's HTTP edge: webhook intake, the job API and
// health checks, on echo.
//
// Handlers return errors; one error handler maps them to HTTP statuses
// and JSON bodies, so the mapping lives in one place. Webhook handlers
// verify, enqueue and return at once: no Git, Docker or registry work
// happens on a request.
package server
