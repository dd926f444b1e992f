// Package source fetches pushed commits from Git repositories.
//
// Each repository has one bare mirror under the data directory, so a later
// push fetches only new objects. A job's commit is written out into a fresh
// directory of its own through an os.Root, so nothing in a repository can
// write outside it. All Git work is done in-process with go-git: no shell,
// no command line carrying a URL or a secret.
package source
