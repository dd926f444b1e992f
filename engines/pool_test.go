package engines

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeEngine answers pings with err, which a test may change.
type fakeEngine struct {
	mu  sync.Mutex
	err error
}

func (f *fakeEngine) ping(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *fakeEngine) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func pool(fakes map[string]*fakeEngine, es ...Engine) *Pool {
	for i := range es {
		f := &fakeEngine{}
		fakes[es[i].Name] = f
		es[i].Ping = f.ping
	}
	return New(es, func() time.Time { return t0 })
}

func TestAcquirePicksLeastBusyMatching(t *testing.T) {
	amd := map[string]string{"arch": "amd64"}
	tests := []struct {
		name    string
		engines []Engine
		held    []string // engines leased before, in order
		down    []string
		on      map[string]string
		avoid   []string
		want    string
		wantErr string
	}{
		{"first when all idle", []Engine{{Name: "a"}, {Name: "b"}}, nil, nil, nil, nil, "a", ""},
		{"least busy", []Engine{{Name: "a"}, {Name: "b"}}, []string{"a"}, nil, nil, nil, "b", ""},
		{"heavier on a tie", []Engine{{Name: "a"}, {Name: "b", Weight: 2}}, nil, nil, nil, nil, "b", ""},
		{"weight counts builds", []Engine{{Name: "a"}, {Name: "b", Weight: 3}}, []string{"a", "b", "b"}, nil, nil, nil, "b", ""},
		{"weight full", []Engine{{Name: "a"}, {Name: "b", Weight: 2}}, []string{"b", "b"}, nil, nil, nil, "a", ""},
		{"labels", []Engine{{Name: "a"}, {Name: "b", Labels: amd}}, nil, nil, amd, nil, "b", ""},
		{"down skipped", []Engine{{Name: "a"}, {Name: "b"}}, []string{"b", "b"}, []string{"a"}, nil, nil, "b", ""},
		{"avoid", []Engine{{Name: "a"}, {Name: "b"}}, nil, nil, nil, []string{"a"}, "b", ""},
		{"no label match", []Engine{{Name: "a"}}, nil, nil, amd, nil, "", "none carries the labels map[arch:amd64]"},
		{"all down", []Engine{{Name: "a"}, {Name: "b"}}, nil, []string{"a", "b"}, nil, nil, "", "is down (a: gone; b: gone)"},
		{"only other down", []Engine{{Name: "a"}, {Name: "b"}}, nil, []string{"b"}, nil, []string{"a"}, "", "other than a is down (b: gone)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fakes := map[string]*fakeEngine{}
			p := pool(fakes, tt.engines...)
			for _, n := range tt.held {
				l, err := p.Acquire(context.Background(), map[string]string{}, otherThan(p, n)...)
				if err != nil || l.Name != n {
					t.Fatalf("setup: lease %s: %v", n, err)
				}
			}
			for _, n := range tt.down {
				fakes[n].set(errors.New("gone"))
				p.mark(n, errors.New("gone"))
			}
			l, err := p.Acquire(context.Background(), tt.on, tt.avoid...)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrNoEngine) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrNoEngine with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Name != tt.want {
				t.Errorf("leased %s, want %s", l.Name, tt.want)
			}
		})
	}
}

// otherThan names every engine of p but n.
func otherThan(p *Pool, n string) []string {
	var out []string
	for _, s := range p.States() {
		if s.Name != n {
			out = append(out, s.Name)
		}
	}
	return out
}

func TestReleaseFreesOnce(t *testing.T) {
	p := pool(map[string]*fakeEngine{}, Engine{Name: "a"})
	l, _ := p.Acquire(context.Background(), nil)
	l2, _ := p.Acquire(context.Background(), nil)
	if got := p.States()[0].Running; got != 2 {
		t.Fatalf("running = %d, want 2", got)
	}
	l.Release()
	l.Release()
	if got := p.States()[0].Running; got != 1 {
		t.Errorf("running after releasing one lease twice = %d, want 1", got)
	}
	l2.Release()
}

func TestLostMarksDownAndProbeBringsBack(t *testing.T) {
	fakes := map[string]*fakeEngine{}
	p := pool(fakes, Engine{Name: "a"}, Engine{Name: "b"})
	l, _ := p.Acquire(context.Background(), nil)
	buildErr := errors.New("build: unexpected EOF")

	if l.Lost(context.Background(), buildErr) {
		t.Fatal("Lost = true for an engine that still answers: the build itself failed")
	}
	fakes["a"].set(errors.New("dial unix /run/a.sock: connect: connection refused"))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if l.Lost(cancelled, buildErr) {
		t.Error("Lost = true for a build the job stopped")
	}
	if !l.Lost(context.Background(), buildErr) {
		t.Fatal("Lost = false for an engine that does not answer")
	}
	want := []State{
		{Name: "a", Up: false, Running: 1, Since: t0, Error: "dial unix /run/a.sock: connect: connection refused"},
		{Name: "b", Up: true},
	}
	if diff := cmp.Diff(want, p.States()); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	if err := p.Ready(context.Background()); err != nil {
		t.Errorf("Ready = %v with b up", err)
	}
	fakes["b"].set(errors.New("gone"))
	if err := p.Ready(context.Background()); !errors.Is(err, ErrNoEngine) {
		t.Errorf("Ready = %v with every engine down, want ErrNoEngine", err)
	}

	fakes["a"].set(nil)
	p.Probe(context.Background())
	if s := p.States()[0]; !s.Up || s.Error != "" {
		t.Errorf("a after a good probe = %+v, want up", s)
	}
}

func TestAcquirePingsDownEnginesBeforeGivingUp(t *testing.T) {
	fakes := map[string]*fakeEngine{}
	p := pool(fakes, Engine{Name: "a"})
	p.mark("a", errors.New("gone"))
	// a answers again, but no Probe has run since.
	l, err := p.Acquire(context.Background(), nil)
	if err != nil {
		t.Fatalf("Acquire = %v, want a back up", err)
	}
	if l.Name != "a" {
		t.Errorf("leased %s", l.Name)
	}
}
