// Package dashboard is swarmhook's web UI: the projects, jobs, job,
// services and prune pages and the status badge, served by the same
// binary at /.
//
// Pages are rendered on the server with html/template for a fast, small
// first paint; a little vanilla JavaScript (static/app.js, embedded, no
// CDN, no build step) keeps them live and calls the JSON API under /api
// for actions. A browser signs in with an API token, which is exchanged
// for a session cookie (HttpOnly, SameSite=Strict, with an expiry); the
// token itself is never kept. The API accepts that cookie through
// Sessions.Authenticate, and for any unsafe method also wants the
// session's CSRF token in the X-CSRF-Token header, which only the
// dashboard's own pages carry.
package dashboard
