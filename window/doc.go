// Package window reads deploy windows: the times a deploy target takes
// deploys, each written as a cron expression for when it opens and how
// long it stays open, in a time zone. It is pure: no I/O, time is
// passed in.
package window
