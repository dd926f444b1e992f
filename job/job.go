package job

import (
	"fmt"
	"slices"
	"time"

	"github.com/swarmhook/swarmhook/stack"
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
	// Superseded: a newer build of the same branch replaced it while it
	// waited (pushes usually join the waiting build instead; see
	// Job.Pushes); SupersededBy names that job.
	Superseded Status = "superseded"
	// Interrupted: swarmhook stopped while it ran.
	Interrupted Status = "interrupted"
	// Waiting: the job's images are pushed (or, for a promotion,
	// resolved) and its deploy waits, holding no worker, for what
	// Job.Wait names: an approval, a deploy window, a freeze's end.
	Waiting Status = "waiting"
	// Rejected: a token with the approve scope refused its deploy.
	Rejected Status = "rejected"
	// Expired: nobody approved its deploy in time.
	Expired Status = "expired"
)

// Action says what a job does.
type Action string

// Actions.
const (
	// ActionBuild fetches, builds, pushes and deploys a commit.
	ActionBuild Action = "build"
	// ActionDeploy deploys an existing tag without building.
	ActionDeploy Action = "deploy"
	// ActionRollback returns a service to Swarm's previous spec or a tag.
	ActionRollback Action = "rollback"
	// ActionRedeploy restarts a service's tasks on the same digest.
	ActionRedeploy Action = "redeploy"
	// ActionScale changes a service's replica count.
	ActionScale Action = "scale"
	// ActionPrune deletes old timestamped tags from the registry; the
	// prune package does it, through Runner.Do.
	ActionPrune Action = "prune"
	// ActionPromote deploys the digests one environment's services run
	// to another environment's services, building nothing.
	ActionPromote Action = "promote"
)

// Final reports whether s is an end state.
func (s Status) Final() bool { return s != Queued && s != Running && s != Waiting }

// Trigger says what started a job.
type Trigger string

// Triggers.
const (
	TriggerPush     Trigger = "push"
	TriggerManual   Trigger = "manual"
	TriggerRollback Trigger = "rollback"
	TriggerSchedule Trigger = "schedule"
)

// Job is one run of the pipeline, as stored and as the API shows it.
type Job struct {
	ID         int64            `json:"id"`
	Project    string           `json:"project,omitempty"`
	Number     int64            `json:"number"`
	Action     Action           `json:"action"`
	Trigger    Trigger          `json:"trigger,omitempty"`
	Status     Status           `json:"status"`
	Ref        string           `json:"ref,omitempty"`
	Branch     string           `json:"branch,omitempty"`
	Commit     string           `json:"commit,omitempty"`
	DeliveryID string           `json:"delivery_id,omitempty"`
	Who        string           `json:"who,omitempty"`
	Created    time.Time        `json:"created,omitzero"`
	Started    time.Time        `json:"started,omitzero"`
	Finished   time.Time        `json:"finished,omitzero"`
	Stages     []Stage          `json:"stages,omitempty"`
	Images     []Image          `json:"images,omitempty"`
	Services   []updater.Result `json:"services,omitempty"`
	Error      string           `json:"error,omitempty"`
	// Stage is the stage a running job is in now; absent between stages
	// and once the job ends. Stages lists the ones it finished.
	Stage *CurrentStage `json:"stage,omitempty"`
	// Reverted are the services rollback_all returned to their previous
	// images after a failure.
	Reverted []updater.Result `json:"reverted,omitempty"`
	// Engine is the build engine of docker.builders the images were
	// built and pushed on.
	Engine string `json:"engine,omitempty"`
	// SupersededBy is the newer job that replaced this one in the queue.
	SupersededBy int64 `json:"superseded_by,omitempty"`
	// Pushes counts the pushes a build stands for: 1, plus one for each
	// later push to its branch that joined it while it waited (it then
	// builds the newest of them: Commit, Who, DeliveryID are the last
	// push's). 0 on service actions.
	Pushes int `json:"pushes,omitempty"`
	// Starters are everyone whose push or request a build stands for
	// once a later one joined it (Pushes > 1): each one's Who, oldest
	// first, each once. Empty while none joined. None of them may
	// approve its deploy (see StartedBy).
	Starters []string `json:"starters,omitempty"`
	// Service, Tag and Replicas are the arguments of service actions.
	Service  string  `json:"service,omitempty"`
	Tag      string  `json:"tag,omitempty"`
	Replicas *uint64 `json:"replicas,omitempty"`
	// Pruned counts, per repository, what a prune kept and deleted.
	Pruned []Pruned `json:"pruned,omitempty"`
	// Plan is what a stack deploy planned and applied: names and the
	// fields that changed, never a value.
	Plan *stack.Plan `json:"plan,omitempty"`
	// Environment is the environment a promotion deploys to, From the
	// one whose digests it deploys.
	Environment string `json:"environment,omitempty"`
	From        string `json:"from,omitempty"`
	// Wait is what a waiting job's deploy waits for (see Waiting); it
	// stays once the wait is over, saying what it waited for last.
	Wait *Wait `json:"wait,omitempty"`
	// Decisions are what people said about its held deploy, in order:
	// who approved, rejected or deployed it through a window or freeze,
	// and why.
	Decisions []Decision `json:"decisions,omitempty"`
}

// WaitFor names what a held deploy waits for.
type WaitFor string

// What a deploy may wait for.
const (
	WaitApproval WaitFor = "approval"
	WaitWindow   WaitFor = "window"
	WaitFreeze   WaitFor = "freeze"
)

// Wait is a held deploy: what it waits for, to deploy to which target.
type Wait struct {
	For WaitFor `json:"for"`
	// Target is the index of the deploy target in its project's deploy
	// list.
	Target int `json:"target"`
	// Since is when the wait began.
	Since time.Time `json:"since"`
	// Until is when an approval expires, a window opens or a freeze
	// ends; zero when no window ever opens again or a freeze has no end.
	Until time.Time `json:"until,omitzero"`
	// Scope is the scope an approval needs.
	Scope string `json:"scope,omitempty"`
	// Reason is the freeze's reason.
	Reason string `json:"reason,omitempty"`
}

// StageName is how a waiting job's current stage reads: "waiting for
// approval", "waiting for deploy window", "waiting for freeze to end".
func (w *Wait) StageName() string {
	switch w.For {
	case WaitWindow:
		return "waiting for deploy window"
	case WaitFreeze:
		return "waiting for freeze to end"
	}
	return "waiting for approval"
}

// Verdict is what a person decided about a held deploy.
type Verdict string

// Verdicts.
const (
	Approved Verdict = "approved"
	Refused  Verdict = "rejected"
	// Overridden: deployed outside its windows or through a freeze.
	Overridden Verdict = "override"
)

// Decision is one person's word on a held deploy.
type Decision struct {
	Verdict Verdict   `json:"verdict"`
	Who     string    `json:"who"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// Pruned is what a prune did to one repository.
type Pruned struct {
	Repository string `json:"repository"`
	Tags       int    `json:"tags"`
	Kept       int    `json:"kept"`
	Deleted    int    `json:"deleted"`
	Failed     int    `json:"failed,omitempty"`
}

// describe says in a few words what the job does, for its log.
func (j *Job) describe() string {
	switch j.Action {
	case ActionBuild:
		if j.Pushes > 1 {
			return fmt.Sprintf("build %s at %s (the newest of %d pushes)", j.Branch, j.Commit, j.Pushes)
		}
		return fmt.Sprintf("build %s at %s", j.Branch, j.Commit)
	case ActionDeploy:
		return fmt.Sprintf("deploy tag %s", j.Tag)
	case ActionPrune:
		return "prune of the registry"
	case ActionPromote:
		return fmt.Sprintf("promote %s to %s", j.From, j.Environment)
	case ActionScale:
		if j.Replicas != nil {
			return fmt.Sprintf("scale %s to %d", j.Service, *j.Replicas)
		}
	}
	if j.Tag != "" {
		return fmt.Sprintf("%s %s to %s", j.Action, j.Service, j.Tag)
	}
	return fmt.Sprintf("%s %s", j.Action, j.Service)
}

// Stage is one timed step of a job.
type Stage struct {
	Name     string    `json:"name"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Millis is Finished-Started in milliseconds, for readers of the JSON.
	Millis int64 `json:"ms"`
}

// CurrentStage is the stage a running job is in, named as in Stages.
type CurrentStage struct {
	Name    string    `json:"name"`
	Started time.Time `json:"started"`
}

// Image is one image a job built and pushed.
type Image struct {
	Name      string `json:"name"`
	Tag       string `json:"tag"`
	LatestTag string `json:"latest_tag,omitempty"`
	Digest    string `json:"digest,omitempty"`
	// Ref is registry/name:tag@digest, what services are set to.
	Ref string `json:"ref,omitempty"`
}

// StartedBy reports whether who started j: its Who, or the Who of a
// push or request that joined it while it waited (Starters).
func (j *Job) StartedBy(who string) bool {
	return who == j.Who || slices.Contains(j.Starters, who)
}

// Clone returns a deep copy, so stores and readers never share slices
// with a running job.
func (j *Job) Clone() *Job {
	c := *j
	if j.Stage != nil {
		s := *j.Stage
		c.Stage = &s
	}
	c.Stages = append([]Stage(nil), j.Stages...)
	c.Images = append([]Image(nil), j.Images...)
	c.Services = append([]updater.Result(nil), j.Services...)
	c.Reverted = append([]updater.Result(nil), j.Reverted...)
	c.Pruned = append([]Pruned(nil), j.Pruned...)
	c.Decisions = append([]Decision(nil), j.Decisions...)
	c.Starters = append([]string(nil), j.Starters...)
	if j.Wait != nil {
		w := *j.Wait
		c.Wait = &w
	}
	return &c
}
