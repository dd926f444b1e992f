// Package gctune makes the garbage collector run less often while the
// process allocates fast, as it does under a burst of webhook
// deliveries, and returns to the usual pace (and gives the memory back)
// once the burst is over.
//
// With Go's default GOGC=100 and the few MiB of live heap swarmhook has,
// a burst of thousands of deliveries a second starts a collection many
// times a second, and each one slows the requests in flight: at 5,000
// deliveries/s that was most of the intake's p99. A higher GOGC during the
// burst collects a few times less often, at the price of a heap a few
// times the live one, for the burst only: idle memory stays what
// GOGC=100 gives.
package gctune

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Config says when a burst starts and what the collector does during it.
// The zero value takes the defaults.
type Config struct {
	// BusyBytesPerSecond is the allocation rate from which the process
	// counts as busy. Default 16 MiB/s: about 2,000 deliveries a second.
	BusyBytesPerSecond float64
	// BusyPercent is the GOGC used while busy. Default 400.
	BusyPercent int
	// IdlePercent is the GOGC used otherwise. Default 100, Go's own.
	IdlePercent int
	// Every is how often the allocation rate is read. Default 250 ms.
	Every time.Duration
}

func (c *Config) defaults() {
	if c.BusyBytesPerSecond == 0 {
		c.BusyBytesPerSecond = 16 << 20
	}
	if c.BusyPercent == 0 {
		c.BusyPercent = 400
	}
	if c.IdlePercent == 0 {
		c.IdlePercent = 100
	}
	if c.Every == 0 {
		c.Every = 250 * time.Millisecond
	}
}

// Controller decides the GOGC for each reading of the allocation rate.
// It is separate from Run so the decision can be tested without the
// runtime.
type Controller struct {
	cfg  Config
	busy bool
}

// NewController returns a controller that starts idle.
func NewController(cfg Config) *Controller {
	cfg.defaults()
	return &Controller{cfg: cfg}
}

// Step takes the bytes allocated over the last interval of length d and
// returns the GOGC to set and whether it changed. Busy starts at the
// threshold and ends below half of it, so a rate near the threshold does
// not flip the setting at every reading.
func (c *Controller) Step(allocated uint64, d time.Duration) (percent int, changed bool) {
	rate := float64(allocated) / d.Seconds()
	was := c.busy
	switch {
	case !c.busy && rate >= c.cfg.BusyBytesPerSecond:
		c.busy = true
	case c.busy && rate < c.cfg.BusyBytesPerSecond/2:
		c.busy = false
	}
	if c.busy {
		return c.cfg.BusyPercent, c.busy != was
	}
	return c.cfg.IdlePercent, c.busy != was
}

// Run adjusts the collector until ctx is done, then restores IdlePercent.
// At the end of a burst it collects once and returns freed memory to the
// operating system, so idle memory does not keep the burst's heap.
func Run(ctx context.Context, cfg Config) {
	cfg.defaults()
	c := NewController(cfg)
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	tick := time.NewTicker(cfg.Every)
	defer tick.Stop()
	last, lastAt := read(), time.Now()
	defer debug.SetGCPercent(cfg.IdlePercent)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			total := read()
			percent, changed := c.Step(total-last, now.Sub(lastAt))
			last, lastAt = total, now
			if !changed {
				continue
			}
			debug.SetGCPercent(percent)
			if !c.busy {
				debug.FreeOSMemory()
			}
		}
	}
}
