package window

import (
	"testing"
	"time"
)

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOpen(t *testing.T) {
	// Weekdays 09:00-17:00 in Berlin (UTC+1 in December).
	office, err := Parse("0 9 * * 1-5", 8*time.Hour, "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// Every day 22:00 for 4 hours: spans midnight.
	night, err := Parse("0 22 * * *", 4*time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	// With seconds: opens at 12:00:30 for 10s.
	secs, err := Parse("30 0 12 * * *", 10*time.Second, "UTC")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		w       *Window
		t       string
		open    bool
		closeAt string
		next    string
	}{
		{"thursday morning", office, "2026-12-03T08:30:00Z", true, "2026-12-03T16:00:00Z", ""},
		{"opening instant", office, "2026-12-03T08:00:00Z", true, "2026-12-03T16:00:00Z", ""},
		{"closing instant", office, "2026-12-03T16:00:00Z", false, "", "2026-12-04T08:00:00Z"},
		{"before opening", office, "2026-12-03T07:59:59Z", false, "", "2026-12-03T08:00:00Z"},
		{"saturday", office, "2026-12-05T10:00:00Z", false, "", "2026-12-07T08:00:00Z"},
		{"past midnight", night, "2026-12-04T01:00:00Z", true, "2026-12-04T02:00:00Z", ""},
		{"afternoon", night, "2026-12-04T15:00:00Z", false, "", "2026-12-04T22:00:00Z"},
		{"seconds inside", secs, "2026-12-03T12:00:35Z", true, "2026-12-03T12:00:40Z", ""},
		{"seconds before", secs, "2026-12-03T12:00:29Z", false, "", "2026-12-03T12:00:30Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := at(t, tc.t)
			open, until := tc.w.Open(now)
			if open != tc.open {
				t.Fatalf("Open(%s) = %v, want %v", tc.t, open, tc.open)
			}
			if open && !until.Equal(at(t, tc.closeAt)) {
				t.Errorf("open until %s, want %s", until.UTC(), tc.closeAt)
			}
			if !open {
				if next := (Set{tc.w}).NextOpen(now); !next.Equal(at(t, tc.next)) {
					t.Errorf("NextOpen = %s, want %s", next.UTC(), tc.next)
				}
			}
		})
	}
}

func TestSet(t *testing.T) {
	a, _ := Parse("0 9 * * *", time.Hour, "")
	b, _ := Parse("0 14 * * *", time.Hour, "")
	now := at(t, "2026-12-03T11:00:00Z")
	if (Set{}).Open(now) != true {
		t.Error("an empty set must always be open")
	}
	s := Set{a, b}
	if s.Open(now) {
		t.Error("11:00 is in neither window")
	}
	if next := s.NextOpen(now); !next.Equal(at(t, "2026-12-03T14:00:00Z")) {
		t.Errorf("NextOpen = %s, want the 14:00 window", next)
	}
	if !s.Open(at(t, "2026-12-03T14:30:00Z")) {
		t.Error("14:30 is in the second window")
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, start, tz string
		length          time.Duration
	}{
		{"bad cron", "every day", "", time.Hour},
		{"bad zone", "0 9 * * *", "Mars/Olympus", time.Hour},
		{"no length", "0 9 * * *", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse(tc.start, tc.length, tc.tz); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
