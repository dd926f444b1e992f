// Package notify tells people and Git hosts how jobs went: a
// Slack-compatible chat message and a generic JSON POST when a job ends,
// and a commit status (pending, then success or failure, with a link to
// the job) on GitHub, GitLab, Gitea or Forgejo.
//
// A Notifier is a job.Observer. It never blocks the job that it reports
// on and never fails it: calls are queued on a bounded queue and sent by
// background workers, retried with backoff, and dropped (and counted)
// when the queue is full. Tokens and webhook URLs, which are secrets,
// never appear in its logs or errors.
package notify
