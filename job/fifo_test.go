package job

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The Queue's own rules, without a runner: each case runs steps on an
// empty queue and checks what they return.
func TestQueue(t *testing.T) {
	build := func(id int64, branch, commit string) *Entry {
		return &Entry{Job: &Job{ID: id, Project: "shop", Branch: branch, Commit: commit, Action: ActionBuild, Status: Queued, Pushes: 1}}
	}
	push := func(branch, commit, who string) *Job {
		return &Job{Project: "shop", Branch: branch, Commit: commit, Who: who, Trigger: TriggerPush}
	}
	d := func(id string, earlier ...int64) *Delivery {
		return &Delivery{Provider: "github", ID: id, Earlier: earlier}
	}
	next := func(t *testing.T, q *Queue) int64 {
		t.Helper()
		e, ok := q.Next()
		if !ok {
			return 0
		}
		return e.Job.ID
	}
	tests := []struct {
		name string
		run  func(t *testing.T, q *Queue)
	}{
		{"a push joins nothing in an empty lane", func(t *testing.T, q *Queue) {
			if _, ok := q.Join(push("main", "c2", ""), d("d2")); ok {
				t.Error("joined a build that is not there")
			}
			if q.Seen("github", "d2") != nil {
				t.Error("a push that joined nothing was remembered")
			}
		}},
		{"a push joins the waiting build", func(t *testing.T, q *Queue) {
			q.Push(build(1, "main", "c1"))
			j, ok := q.Join(push("main", "c2", "tess"), d("d2", 7))
			if !ok || j.ID != 1 || j.Commit != "c2" || j.Who != "tess" || j.Pushes != 2 {
				t.Fatalf("Join = %+v %v, want job 1 at c2 by tess with 2 pushes", j, ok)
			}
			q.Join(push("main", "c3", ""), d("d3"))
			e, _ := q.Next()
			if e.Job.Commit != "c3" || e.Job.Pushes != 3 || len(e.Deliveries) != 2 {
				t.Errorf("next = %+v with %d deliveries, want c3, 3 pushes, 2 deliveries", e.Job, len(e.Deliveries))
			}
			if diff := cmp.Diff([]int64{7, 1}, q.Seen("github", "d2")); diff != "" {
				t.Errorf("jobs of d2 (-want +got):\n%s", diff)
			}
		}},
		{"every pusher that joins is a starter, once", func(t *testing.T, q *Queue) {
			b := build(1, "main", "c1")
			b.Job.Who = "alice"
			q.Push(b)
			for _, who := range []string{"bob", "", "alice", "carol"} {
				q.Join(push("main", "c2", who), nil)
			}
			e, _ := q.Next()
			if diff := cmp.Diff([]string{"alice", "bob", "carol"}, e.Job.Starters); diff != "" {
				t.Errorf("starters (-want +got):\n%s", diff)
			}
		}},
		{"a push never joins a running build", func(t *testing.T, q *Queue) {
			q.Push(build(1, "main", "c1"))
			next(t, q)
			if _, ok := q.Join(push("main", "c2", ""), nil); ok {
				t.Error("joined the running build")
			}
		}},
		{"a newer build supersedes the waiting one", func(t *testing.T, q *Queue) {
			q.Push(build(1, "main", "c1"))
			q.Join(push("main", "c2", ""), d("d2"))
			old := q.Push(build(2, "main", "c9"))
			if old == nil || old.Job.ID != 1 || len(old.Deliveries) != 1 {
				t.Fatalf("superseded = %+v, want job 1 with its delivery", old)
			}
			if q.Seen("github", "d2") != nil {
				t.Error("the superseded build's delivery is still held")
			}
			if got := next(t, q); got != 2 {
				t.Errorf("next = %d, want 2", got)
			}
		}},
		{"lanes take turns, oldest first, one build running each", func(t *testing.T, q *Queue) {
			q.Push(build(1, "main", "c1"))
			q.Push(build(2, "dev", "c2"))
			var got []int64
			got = append(got, next(t, q), next(t, q), next(t, q))
			if !slices.Equal(got, []int64{1, 2, 0}) {
				t.Errorf("next = %v, want 1, 2, then none", got)
			}
			q.Push(build(3, "main", "c3"))
			if got := next(t, q); got != 0 {
				t.Errorf("next = %d while main's build runs, want none", got)
			}
			if n := q.Ready(); n != 0 {
				t.Errorf("%d lanes ready, want 0", n)
			}
			if n := len(q.Waiting()); n != 1 {
				t.Errorf("%d builds waiting, want 1", n)
			}
			q.Done(&Job{Project: "shop", Branch: "main"})
			if got := next(t, q); got != 3 {
				t.Errorf("next after main's build = %d, want 3", got)
			}
		}},
		{"done forgets the deliveries of the build", func(t *testing.T, q *Queue) {
			q.Push(build(1, "main", "c1"))
			q.Join(push("main", "c2", ""), d("d2"))
			e, _ := q.Next()
			if q.Seen("github", "d2") == nil {
				t.Error("the running build's delivery was forgotten before it was done")
			}
			q.Done(e.Job)
			if q.Seen("github", "d2") != nil || len(q.lanes) != 0 {
				t.Errorf("after Done: delivery %v, %d lanes; want neither", q.Seen("github", "d2"), len(q.lanes))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, NewQueue()) })
	}
}
