// Package dirlock keeps two processes off one directory: Acquire takes an
// exclusive flock(2) on a lock file in it and holds it for as long as the
// process lives or until Release. The holder's PID is written into the
// file so that a process turned away can say who holds the directory.
//
// The kernel drops a flock when the last descriptor of its open file is
// closed, which happens whenever the process ends, however it ends: a
// crashed or SIGKILLed holder never leaves a stale lock behind.
package dirlock
