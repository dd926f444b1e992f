package job

import (
	"time"

	"github.com/swarmhook/swarmhook/updater"
)

// Status is where a job is in its life.
type Status string

// Job statuses. Queued and Running are live; the rest are final.
const (
	Queued    Status = "queued"
	Running   Status = "running"
	Succeeded Status = "succeeded"
	Failed    Status = "failed"
)

// Final reports whether s is an end state.
func (s Status) Final() bool { return s != Queued && s != Running }

// Trigger says what started a job.
type Trigger string

// Triggers.
const (
	TriggerPush   Trigger = "push"
	TriggerManual Trigger = "manual"
)

// Job is one run of the pipeline, as stored and as the API shows it.
type Job struct {
	ID         int64            `json:"id"`
	Project    string           `json:"project"`
	Number     int64            `json:"number"`
	Trigger    Trigger          `json:"trigger"`
	Status     Status           `json:"status"`
	Ref        string           `json:"ref"`
	Branch     string           `json:"branch"`
	Commit     string           `json:"commit"`
	DeliveryID string           `json:"delivery_id,omitempty"`
	Who        string           `json:"who,omitempty"`
	Created    time.Time        `json:"created"`
	Started    time.Time        `json:"started,omitzero"`
	Finished   time.Time        `json:"finished,omitzero"`
	Stages     []Stage          `json:"stages"`
	Images     []Image          `json:"images"`
	Services   []updater.Result `json:"services"`
	Error      string           `json:"error,omitempty"`
}

// Stage is one timed step of a job.
type Stage struct {
	Name     string    `json:"name"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Millis is Finished-Started in milliseconds, for readers of the JSON.
	Millis int64 `json:"ms"`
}

// Image is one image a job built and pushed.
type Image struct {
	Name      string `json:"name"`
	Tag       string `json:"tag"`
	LatestTag string `json:"latest_tag"`
	Digest    string `json:"digest,omitempty"`
	// Ref is registry/name:tag@digest, what services are set to.
	Ref string `json:"ref,omitempty"`
}

// Clone returns a deep copy, so stores and readers never share slices
// with a running job.
func (j *Job) Clone() *Job {
	c := *j
	c.Stages = append([]Stage(nil), j.Stages...)
	c.Images = append([]Image(nil), j.Images...)
	c.Services = append([]updater.Result(nil), j.Services...)
	return &c
}
