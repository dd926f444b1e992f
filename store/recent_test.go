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
	if len(r.at) != 0 {
		t.Errorf("%d deliveries remembered past recentFor", len(r.at))
	}
	if !r.maybeSeen("github", "shop/d1", now.Add(-time.Minute)) {
		t.Error("a delivery forgotten is reported certainly unseen")
	}
	if r.maybeSeen("github", "shop/d1", later.Add(-time.Hour)) {
		t.Error("a delivery older than since is reported maybe seen")
	}
}

func TestRecentForgetsAllWhenFull(t *testing.T) {
	r := newRecent(time.Now())
	at := time.Now().UnixMilli()
	for i := range recentMax {
		r.at[uint64(i)] = at
	}
	since := time.Now().Add(-time.Hour)
	if r.maybeSeen("github", "new", since) {
		t.Fatal("an unseen delivery is reported maybe seen before the cap")
	}
	r.add("github", "one-more", at)
	if len(r.at) != 1 {
		t.Errorf("%d remembered after the cap was passed, want only the newest", len(r.at))
	}
	// What it forgot may have been any delivery since: it must not
	// answer "certainly unseen" for them.
	if !r.maybeSeen("github", "new", since) {
		t.Error("after forgetting all, an earlier delivery is reported certainly unseen")
	}
}
