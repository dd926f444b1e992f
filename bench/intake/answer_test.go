package main

import "testing"

func TestParseAnswer(t *testing.T) {
	const ok = "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\ncontent-length: 11\r\n\r\n{\"job\":42}\n"
	for _, tc := range []struct {
		name    string
		in      string
		status  int
		size    int
		job     int64
		wantErr bool
	}{
		{"whole", ok, 202, len(ok), 42, false},
		{"two in a row", ok + ok, 202, len(ok), 42, false},
		{"head cut short", ok[:30], 0, 0, 0, false},
		{"body cut short", ok[:len(ok)-3], 0, 0, 0, false},
		{"no length", "HTTP/1.1 202 Accepted\r\n\r\n{}", 0, 0, 0, true},
		{"bad status", "HTTP/1.1 2x2 Accepted\r\nContent-Length: 0\r\n\r\n", 0, 0, 0, true},
		{"ignored", "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{\"ignored\":\"ping\"}\n\n", 200, 59, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, size, err := parseAnswer([]byte(tc.in))
			if (err != nil) != tc.wantErr || status != tc.status || size != tc.size || jobID(body) != tc.job {
				t.Errorf("parseAnswer = %d, %q, %d, %v; want %d, size %d, job %d, error %v",
					status, body, size, err, tc.status, tc.size, tc.job, tc.wantErr)
			}
		})
	}
}
