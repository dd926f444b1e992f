package gctune

import (
	"testing"
	"time"
)

func TestControllerFollowsTheAllocationRate(t *testing.T) {
	const mib = 1 << 20
	c := NewController(Config{BusyBytesPerSecond: 16 * mib, BusyPercent: 400, IdlePercent: 100})
	steps := []struct {
		name        string
		allocated   uint64 // over 250 ms
		want        int
		wantChanged bool
	}{
		{"idle", 1 * mib, 100, false},
		{"just under the threshold", 4*mib - 1, 100, false},
		{"a burst starts", 4 * mib, 400, true},
		{"still busy", 10 * mib, 400, false},
		{"slower, above half the threshold", 2*mib + mib/2, 400, false},
		{"below half the threshold: idle again", 2*mib - 1, 100, true},
		{"quiet", 0, 100, false},
	}
	for _, s := range steps {
		got, changed := c.Step(s.allocated, 250*time.Millisecond)
		if got != s.want || changed != s.wantChanged {
			t.Errorf("%s: GOGC %d changed=%v, want %d changed=%v", s.name, got, changed, s.want, s.wantChanged)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := NewController(Config{})
	if got, _ := c.Step(0, time.Second); got != 100 {
		t.Errorf("idle GOGC %d, want 100", got)
	}
	if got, _ := c.Step(20<<20, time.Second); got != 400 {
		t.Errorf("GOGC at 20 MiB/s %d, want 400", got)
	}
}
