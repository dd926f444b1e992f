package window

import (
	"errors"
	"fmt"
	"time"
	_ "time/tzdata" // time zones work in images without /usr/share/zoneinfo

	"github.com/robfig/cron/v3"
)

// parser reads the 5 standard cron fields, or 6 with seconds first, and
// the @daily family.
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Window is one recurring span of time: it opens at each time its
// schedule names and stays open for its length.
type Window struct {
	schedule cron.Schedule
	length   time.Duration
	loc      *time.Location
}

// Parse reads a window opening at the times of the cron expression
// start (5 fields, 6 with seconds, or @daily...), read in time zone tz
// (an IANA name such as Europe/Berlin; empty is UTC), open for length.
func Parse(start string, length time.Duration, tz string) (*Window, error) {
	if length <= 0 {
		return nil, errors.New("window: duration must be positive")
	}
	loc := time.UTC
	if tz != "" {
		var err error
		if loc, err = time.LoadLocation(tz); err != nil {
			return nil, fmt.Errorf("window: time zone %q: %w", tz, err)
		}
	}
	s, err := parser.Parse(start)
	if err != nil {
		return nil, fmt.Errorf("window: start %q is not a cron expression (5 fields, 6 with seconds, or @daily): %w", start, err)
	}
	return &Window{schedule: s, length: length, loc: loc}, nil
}

// Open reports whether t falls inside one of the window's spans, and
// if so until when that span stays open.
func (w *Window) Open(t time.Time) (bool, time.Time) {
	t = t.In(w.loc)
	// The latest opening at or before t is the first one after
	// t-length, if that is not after t. Cron schedules work in whole
	// seconds, so look from just before.
	opening := w.schedule.Next(t.Add(-w.length).Add(-time.Second))
	for !opening.IsZero() && !opening.After(t) {
		if end := opening.Add(w.length); end.After(t) {
			return true, end
		}
		opening = w.schedule.Next(opening)
	}
	return false, time.Time{}
}

// Next returns when the window next opens after t; zero when never.
func (w *Window) Next(t time.Time) time.Time { return w.schedule.Next(t.In(w.loc)) }

// Set is a target's windows: deploys may start while any is open. An
// empty Set is always open.
type Set []*Window

// Open reports whether t falls in one of the windows.
func (s Set) Open(t time.Time) bool {
	if len(s) == 0 {
		return true
	}
	for _, w := range s {
		if ok, _ := w.Open(t); ok {
			return true
		}
	}
	return false
}

// NextOpen returns t when a window is open at t, else when the first of
// them opens after t; zero when none ever does.
func (s Set) NextOpen(t time.Time) time.Time {
	if s.Open(t) {
		return t
	}
	var next time.Time
	for _, w := range s {
		if n := w.Next(t); !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return next
}
