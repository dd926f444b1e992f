// Package tagpolicy names image tags and decides which of them to keep.
//
// Every build is pushed as <branch>-<timestamp> (the rollback point) and
// <branch>-latest (what the branch's services run). Distinct branches
// always get distinct <branch> parts (see BranchComponent). This package turns Git branch names into
// valid Docker tag components, formats and parses those tags, and holds the
// retention rules. It is pure: no I/O, and the current time is always passed
// in, so every decision can be tested on its own.
package tagpolicy
