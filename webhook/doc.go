// Package webhook turns Git host push deliveries into Push events.
//
// Parse tells the host by the request's headers (GitHub, GitLab, Gitea,
// Forgejo, Gogs, Bitbucket Cloud, or swarmhook's generic format), verifies
// the delivery the way that host signs it, in constant time and before
// the body is decoded, then decodes the host's payload into the one Push
// type that everything after intake uses, so nothing downstream knows
// which host sent it. It never touches the network, the disk or the job
// queue, and reads the time only from the Policy it is given.
// docs/webhooks.md describes each host's headers and the generic format.
package webhook
