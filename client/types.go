package client

import (
	"encoding/json"
	"time"
)

// Job is a job record as GET /api/jobs/{id} answers it (the fields the
// CLI shows); Raw is the whole record as the server sent it.
type Job struct {
	ID       int64     `json:"id"`
	Project  string    `json:"project"`
	Number   int64     `json:"number"`
	Action   string    `json:"action"`
	Trigger  string    `json:"trigger"`
	Status   string    `json:"status"`
	Branch   string    `json:"branch"`
	Commit   string    `json:"commit"`
	Who      string    `json:"who"`
	Created  time.Time `json:"created"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Service  string    `json:"service"`
	Tag      string    `json:"tag"`
	Replicas *uint64   `json:"replicas"`
	Error    string    `json:"error"`
	Stage    *struct {
		Name    string    `json:"name"`
		Started time.Time `json:"started"`
	} `json:"stage"`
	Images []struct {
		Name string `json:"name"`
		Tag  string `json:"tag"`
		Ref  string `json:"ref"`
	} `json:"images"`
	Services []ServiceResult `json:"services"`
	Raw      json.RawMessage `json:"-"`
}

// ServiceResult is how one service's update in a job ended.
type ServiceResult struct {
	Service string `json:"service"`
	Outcome string `json:"outcome"`
	Image   string `json:"image"`
	Message string `json:"message"`
}

// UnmarshalJSON decodes the record and keeps its raw JSON.
func (j *Job) UnmarshalJSON(b []byte) error {
	type plain Job
	return keepRaw(b, (*plain)(j), &j.Raw)
}

// Final reports whether the job has ended: any status but queued,
// running and waiting (for an approval, a deploy window or a freeze), as
// job.Status.Final has it; TestFinalAgreesWithTheServer keeps the two in
// step.
func (j *Job) Final() bool {
	switch j.Status {
	case "queued", "running", "waiting":
		return false
	}
	return true
}

// Service is one managed service as GET /api/services answers it.
type Service struct {
	Name        string          `json:"name"`
	Image       string          `json:"image"`
	Tag         string          `json:"tag"`
	Digest      string          `json:"digest"`
	Running     uint64          `json:"running"`
	Desired     uint64          `json:"desired"`
	UpdateState string          `json:"update_state"`
	Raw         json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the record and keeps its raw JSON.
func (s *Service) UnmarshalJSON(b []byte) error {
	type plain Service
	return keepRaw(b, (*plain)(s), &s.Raw)
}

// Tags are a service's rollback candidates, newest first.
type Tags struct {
	Service    string          `json:"service"`
	Repository string          `json:"repository"`
	Tags       []Tag           `json:"tags"`
	Raw        json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the answer and keeps its raw JSON.
func (t *Tags) UnmarshalJSON(b []byte) error {
	type plain Tags
	return keepRaw(b, (*plain)(t), &t.Raw)
}

// Tag is one rollback candidate and how the build that pushed it ended.
type Tag struct {
	Tag    string `json:"tag"`
	Status string `json:"status"`
	Branch string `json:"branch"`
	Job    int64  `json:"job"`
}

// JobFilter selects jobs for Jobs; zero fields select all.
type JobFilter struct {
	Project, Branch, Status, Service string
	// Limit is how many, newest first (the server's default when 0).
	Limit int
	// Before pages: jobs with a smaller ID than this.
	Before int64
}

// Freeze is a deploy freeze (POST /api/freeze).
type Freeze struct {
	Target string `json:"target"`
	Until  string `json:"until,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// keepRaw decodes b into v (a type without UnmarshalJSON, so no loop)
// and keeps b in raw.
func keepRaw[T any](b []byte, v *T, raw *json.RawMessage) error {
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	*raw = append(json.RawMessage(nil), b...)
	return nil
}
