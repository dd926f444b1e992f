// Package source fetches pushed commits from Git repositories.
//
// Each repository has one bare mirror under the data directory, so a later
// push fetches only new objects. The pushed ref is fetched for every job,
// and its tip, which must be the pushed commit or a descendant of it, is
// written out into a fresh directory of its own through an os.Root, so an
// old push never builds an older commit and nothing in a repository can
// write outside the directory. All Git work is done in-process with go-git: no shell,
// no command line carrying a URL or a secret.
package source
