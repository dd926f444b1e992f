package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/swarmhook/swarmhook/job"
)

// TestWaitRidesOutServerTroubleButNotRefusals: a wait goes on through a
// failed read (a restart answers 503 or drops the connection) and stops
// at once on an answer that will not change (the job is gone, the token
// refused).
func TestWaitRidesOutServerTroubleButNotRefusals(t *testing.T) {
	for _, tt := range []struct {
		name    string
		answers []int // statuses before the job is read as final
		wantErr error
		reads   int
	}{
		{"ends", []int{200, 200}, nil, 3},
		{"server restarts", []int{503, 502, 200}, nil, 4},
		{"job gone", []int{404}, ErrNotFound, 1},
		{"token refused", []int{200, 401}, nil, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reads := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reads++
				if reads <= len(tt.answers) {
					w.WriteHeader(tt.answers[reads-1])
					w.Write([]byte(`{"id":5,"status":"running","error":"x"}`))
					return
				}
				w.Write([]byte(`{"id":5,"status":"failed"}`))
			}))
			defer srv.Close()
			c, err := New(srv.URL, "t", WithPoll(time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			j, err := c.Wait(context.Background(), 5)
			if reads != tt.reads {
				t.Errorf("%d reads, want %d", reads, tt.reads)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err %v, want %v", err, tt.wantErr)
			}
			if tt.answers[len(tt.answers)-1] == 200 && (err != nil || j.Status != "failed") {
				t.Errorf("job %+v, %v; want it as it ended", j, err)
			}
			var apiErr *Error
			if tt.name == "token refused" && (!errors.As(err, &apiErr) || apiErr.Status != 401) {
				t.Errorf("err %v, want the 401", err)
			}
		})
	}
}

func TestNewRefusesTokensInTheURL(t *testing.T) {
	for _, u := range []string{"http://u:p@h", "ftp://h", "h:8080", "", "ftp://u:p@h", "https://u:p@", "//u:p@h", "http://u:p@h/%zz"} {
		if _, err := New(u, "t"); err == nil || strings.Contains(err.Error(), ":p@") {
			t.Errorf("New(%q): %v", u, err)
		}
	}
}

// TestFinalAgreesWithTheServer: the client's idea of a finished job is
// the server's, for every status the job package names.
func TestFinalAgreesWithTheServer(t *testing.T) {
	for _, s := range []job.Status{job.Queued, job.Running, job.Waiting, job.Succeeded, job.Failed,
		job.Superseded, job.Interrupted, job.Rejected, job.Expired} {
		j := &Job{Status: string(s)}
		if got, want := j.Final(), s.Final(); got != want {
			t.Errorf("status %s: client says final=%v, server %v", s, got, want)
		}
	}
}
