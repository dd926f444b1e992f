// Package chatops runs swarmhook commands typed in chat: Slack slash
// commands (/deploy rollback shop_api main-20261126101500) and the
// buttons of its messages (approve, reject).
//
// A request is verified with the app's signing secret (Verify), its
// Slack user mapped to the scopes the config gives them, and its command
// run through Actions, which the server implements in process: the same
// code paths as the API, never an HTTP call back with a stored token.
// The answer comes within Slack's 3 seconds; a job's end is posted later
// to the request's response_url, and only to a URL under the configured
// prefixes (https://hooks.slack.com/ by default), since the sender of a
// request chooses that URL.
package chatops
