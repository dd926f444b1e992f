// Package gate holds deploys that may not start yet: until a person
// with the approve scope approves them, until one of their target's
// deploy windows opens, until a freeze ends. It implements job.Gate:
// the runner asks it before every deploy of a build, a tag or a
// promotion, records a held job as waiting (the job then holds no
// worker), and the gate later hands it back (Runner.Continue) or ends
// it (Runner.End): rejected, expired, or superseded by a newer deploy to
// the same target.
//
// Held jobs are kept in memory, with a timer each (an approval's
// expiry, a window's opening, a freeze's end); the job store is where
// they are recorded, and at start the runner hands the waiting jobs it
// finds there back to the gate. Freezes are kept in a small JSON file
// under data_dir (Freezes), their one record.
package gate
