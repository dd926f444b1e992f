package job

import "slices"

// Queue holds the builds waiting to run: one lane per project and branch,
// with at most one build running and one waiting in each, the lanes taking
// turns oldest first. A push to a branch whose build waits joins that
// build (Join) rather than queueing another; a recorded build put in a
// lane that has one waiting supersedes it (Push).
//
// It also knows the deliveries that joined the builds it holds, from Join
// until Done, so that a redelivery is recognised before the store has
// them: that index is derived from the builds held, never stored.
//
// A Queue does no I/O and is not safe for concurrent use: the Runner
// holds its lock around every call.
type Queue struct {
	lanes map[string]*lane
	ready []string // lanes with a waiting build and none running, oldest first
	seen  map[string][]int64
}

// Entry is a build in the queue: its job and the deliveries that joined
// it in memory, to be saved with its next write.
type Entry struct {
	Job        *Job
	Deliveries []*Delivery
}

type lane struct {
	running, waiting *Entry
	ready            bool // the lane is in Queue.ready
}

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	return &Queue{lanes: map[string]*lane{}, seen: map[string][]int64{}}
}

func laneKey(j *Job) string { return j.Project + "\x00" + j.Branch }

func deliveryKey(provider, id string) string { return provider + "\x00" + id }

// Seen returns the jobs delivery id of provider started, if it joined a
// build the queue holds.
func (q *Queue) Seen(provider, id string) []int64 { return q.seen[deliveryKey(provider, id)] }

// Join makes push j part of the build waiting in its lane, if one waits:
// that build takes j's commit, trigger and pusher, adds the pusher to
// its Starters, counts one more push, and remembers d (when set) as having started it. It returns a
// copy of the joined build, or false when no build waits.
func (q *Queue) Join(j *Job, d *Delivery) (*Job, bool) {
	l := q.lanes[laneKey(j)]
	if l == nil || l.waiting == nil {
		return nil, false
	}
	w := l.waiting
	n := w.Job.Clone()
	n.Starters = joinStarters(n, j.Who)
	n.Trigger, n.Ref, n.Commit, n.DeliveryID, n.Who = j.Trigger, j.Ref, j.Commit, j.DeliveryID, j.Who
	n.Pushes = max(n.Pushes, 1) + 1
	w.Job = n
	if d != nil {
		w.Deliveries = append(w.Deliveries, d)
		q.seen[deliveryKey(d.Provider, d.ID)] = append(append([]int64(nil), d.Earlier...), n.ID)
	}
	return n.Clone(), true
}

// Push makes recorded build b the waiting build of its lane and returns
// the build it superseded, if one waited. Callers push a lane's builds
// oldest first.
func (q *Queue) Push(b *Entry) *Entry {
	key := laneKey(b.Job)
	l := q.lanes[key]
	if l == nil {
		l = &lane{}
		q.lanes[key] = l
	}
	old := l.waiting
	if old != nil {
		q.forget(old)
	}
	l.waiting = b
	q.makeReady(key, l)
	return old
}

// Next takes the waiting build of the lane that has waited longest with
// nothing running, and marks it running; false when no lane is ready.
func (q *Queue) Next() (*Entry, bool) {
	for len(q.ready) > 0 {
		key := q.ready[0]
		q.ready = q.ready[1:]
		l := q.lanes[key]
		l.ready = false
		if l.waiting != nil && l.running == nil {
			l.running, l.waiting = l.waiting, nil
			return l.running, true
		}
	}
	return nil, false
}

// Done ends the running build of j's lane: its deliveries are the
// store's to know from now on, and a build that waits behind it is
// ready.
func (q *Queue) Done(j *Job) {
	key := laneKey(j)
	l := q.lanes[key]
	if l == nil || l.running == nil {
		return
	}
	q.forget(l.running)
	l.running = nil
	if l.waiting == nil {
		delete(q.lanes, key)
		return
	}
	q.makeReady(key, l)
}

// Waiting returns the builds waiting to run, in no order.
func (q *Queue) Waiting() []*Entry {
	var out []*Entry
	for _, l := range q.lanes {
		if l.waiting != nil {
			out = append(out, l.waiting)
		}
	}
	return out
}

// Ready returns how many lanes wait for a worker.
func (q *Queue) Ready() int { return len(q.ready) }

func (q *Queue) makeReady(key string, l *lane) {
	if l.running == nil && !l.ready {
		q.ready = append(q.ready, key)
		l.ready = true
	}
}

func (q *Queue) forget(b *Entry) {
	for _, d := range b.Deliveries {
		delete(q.seen, deliveryKey(d.Provider, d.ID))
	}
}

// joinStarters is w's Starters once who joins it: w's own starter
// first, then who, each once; an empty name is no one.
func joinStarters(w *Job, who string) []string {
	out := slices.Clone(w.Starters)
	for _, s := range []string{w.Who, who} {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
