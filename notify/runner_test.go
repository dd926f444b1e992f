package notify

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
	"github.com/swarmhook/swarmhook/updater"
)

// memStore is a job.Store in memory.
type memStore struct {
	mu   sync.Mutex
	jobs map[int64]*job.Job
}

func (s *memStore) Create(_ context.Context, j *job.Job, _ *job.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	j.ID = int64(len(s.jobs) + 1)
	j.Number = j.ID
	s.jobs[j.ID] = j.Clone()
	return nil
}

func (s *memStore) Save(_ context.Context, j *job.Job, _ ...*job.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[j.ID] = j.Clone()
	return nil
}

func (s *memStore) Unfinished(context.Context) ([]*job.Job, error) { return nil, nil }
func (s *memStore) Delivery(context.Context, string, string, time.Time) ([]int64, bool, error) {
	return nil, false, nil
}

func (s *memStore) status(id int64) job.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs[id].Status
}

type discardLogs struct{}

func (discardLogs) Create(int64) (io.WriteCloser, error) { return nopWriteCloser{}, nil }

type nopWriteCloser struct{}

func (nopWriteCloser) Write(p []byte) (int, error) { return len(p), nil }
func (nopWriteCloser) Close() error                { return nil }

// instantSwarm redeploys at once; the runner calls nothing else of it
// in this test.
type instantSwarm struct{ job.ServiceUpdater }

func (instantSwarm) Redeploy(_ context.Context, service string, _ time.Duration, _ io.Writer) (updater.Result, error) {
	return updater.Result{Service: service, Outcome: updater.Updated}, nil
}

// The runner and the notifier together, as main wires them: a job whose
// every notification goes to an endpoint that never answers still runs
// to its end.
func TestJobEndsWhileItsNotificationsHang(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		arrived := make(chan struct{}, 10)
		release := make(chan struct{})
		hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})

		cfg, err := config.Load(strings.NewReader(`
registry: {host: "127.0.0.1:5000"}
projects:
  - name: shop
    repo: file:///srv/shop.git
    images: [{name: shop/web}]
    deploy: [{branch: main, services: [web]}]
    notify: {slack: ["http://slack.test/services/x"], on: [started, success]}
`), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		n := New(cfg, Options{Client: fakeNet{"slack.test": hang}.client(), Timeout: time.Hour})
		ctx := context.Background()
		n.Start(ctx)
		store := &memStore{jobs: map[int64]*job.Job{}}
		r := job.NewRunner(cfg, job.Deps{Store: store, Logs: discardLogs{}, Updater: instantSwarm{}, Log: zerolog.Nop(),
			Observers: []job.Observer{n}})
		r.Start(ctx)
		t.Cleanup(func() {
			close(release) // before the notifier's shutdown waits on the call
			r.Shutdown(ctx)
			n.Shutdown(ctx)
		})

		j, err := r.Submit(ctx, job.Request{Project: "shop", Action: job.ActionRedeploy, Trigger: job.TriggerManual, Service: "web"})
		if err != nil {
			t.Fatal(err)
		}
		// Everything that can happen without the endpoint answering, and
		// without the clock moving (no call has timed out), has happened.
		synctest.Wait()
		select {
		case <-arrived: // the "started" message is stuck in the endpoint
		default:
			t.Fatal("the started notification never reached the endpoint")
		}
		if st := store.status(j.ID); st != job.Succeeded {
			t.Fatalf("job is %s while its notification hangs, want succeeded", st)
		}
	})
}
