// Package store keeps job records and job logs.
//
// Memory holds job records for the life of the process; LogDir keeps each
// job's log as a file under the data directory, readable while the job is
// still writing it.
package store
