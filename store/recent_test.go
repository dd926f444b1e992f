package store

import (
	"testing"
	"time"
)

func TestRecentDeliveries(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	r := newRecent(now)
	r.add("github", "shop/d1", now.UnixMilli())
	r.add("gitlab", "shop/old", now.Add(-2*time.Hour).UnixMilli())
	day := now.Add(-24 * time.Hour)
	for _, tc := range []struct {
		name         string
		provider, id string
		since        time.Time
		want         bool
	}{
		{"recorded", "github", "shop/d1", day, true},
		{"never recorded", "github", "shop/d2", day, false},
		{"same id, other provider", "gitlab", "shop/d1", day, false},
		{"recorded before since", "gitlab", "shop/old", now.Add(-time.Hour), false},
		{"recorded after since", "gitlab", "shop/old", day, true},
		{"since before what it covers", "github", "shop/d2", now.Add(-recentFor - time.Minute), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.maybeSeen(tc.provider, tc.id, tc.since); got != tc.want {
				t.Errorf("maybeSeen(%s, %s, since %v) = %v, want %v", tc.provider, tc.id, tc.since, got, tc.want)
			}
		})
	}

	// Forgetting drops what is past recentFor, and says so: an old since
	// answers "maybe" from then on.
	later := now.Add(recentFor + time.Hour)
	r.forget(later)
	if n := len(r.cur) + len(r.old); n != 0 {
		t.Errorf("%d deliveries remembered past recentFor", n)
	}
	if !r.maybeSeen("github", "shop/d1", now.Add(-time.Minute)) {
		t.Error("a delivery forgotten is reported certainly unseen")
	}
	if r.maybeSeen("github", "shop/d1", later.Add(-time.Hour)) {
		t.Error("a delivery older than since is reported maybe seen")
	}
}

func TestRecentForgetsTheOlderHalfWhenFull(t *testing.T) {
	r := newRecent(time.Now())
	at := time.Now().UnixMilli()
	since := time.Now().Add(-time.Hour)
	fill := func() {
		for i := len(r.cur); i < recentMax/2; i++ {
			r.cur[uint64(i)<<1|1] = at // not a real delivery's, all but surely
		}
	}
	r.add("github", "first", at)
	fill()
	r.add("github", "second", at) // the newer generation was full
	for _, tc := range []struct {
		id   string
		want bool
	}{{"first", true}, {"second", true}, {"never", false}} {
		if got := r.maybeSeen("github", tc.id, since); got != tc.want {
			t.Errorf("after one generation filled: maybeSeen(%s) = %v, want %v", tc.id, got, tc.want)
		}
	}
	fill()
	r.add("github", "third", at) // and again: "first" is forgotten
	if len(r.cur)+len(r.old) > recentMax/2+1 {
		t.Errorf("%d remembered, want at most %d", len(r.cur)+len(r.old), recentMax/2+1)
	}
	// What it forgot may have been any delivery from before the newer
	// half began: it must not answer "certainly unseen" for them.
	for _, id := range []string{"first", "second", "third", "never"} {
		if !r.maybeSeen("github", id, since) {
			t.Errorf("after forgetting the first generation, maybeSeen(%s) since an hour ago = false, want maybe", id)
		}
	}
}
