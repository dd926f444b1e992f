package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/swarmhook/swarmhook/webhook"
)

// rawAnswer is a response read off a raw connection.
type rawAnswer struct {
	code   int
	header http.Header
	body   map[string]any
}

// sendRaw writes request as is to the fast route and reads one answer,
// failing the test if none comes within five seconds.
func sendRaw(t *testing.T, url, request string) rawAnswer {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	a := rawAnswer{code: resp.StatusCode, header: resp.Header}
	if err := json.NewDecoder(resp.Body).Decode(&a.body); err != nil {
		t.Fatalf("answer %d is not JSON: %v", resp.StatusCode, err)
	}
	return a
}

func TestFastRouteRefusesOversizedBodies(t *testing.T) {
	tests := []struct {
		name    string
		request string
		errHas  string
		// counted: what the delivery counts as (see fastError for why a
		// chunked one is not).
		counted map[string]int
	}{
		{
			// Only 100 of the 10 MiB declared are sent: an answer proves
			// the server did not wait for the rest.
			name:    "declared length over the limit is refused unread",
			request: "POST /hooks/shop HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nContent-Length: 10485760\r\n\r\n" + strings.Repeat(" ", 100),
			errHas:  "10485760 bytes declared, the limit is 4096",
			counted: map[string]int{"github refused": 1},
		},
		{
			name: "chunked body is cut off at the limit",
			request: "POST /hooks/shop HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nTransfer-Encoding: chunked\r\n\r\n" +
				strings.Repeat(fmt.Sprintf("%x\r\n%s\r\n", 1000, strings.Repeat(" ", 1000)), 5) + "0\r\n\r\n",
			errHas: "the limit is 4096 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureOn(t, "fast")
			counts := &deliveryCounts{}
			f.srv.d.DeliveryCounter = counts
			a := sendRaw(t, f.url, tt.request)
			if a.code != http.StatusRequestEntityTooLarge || !strings.Contains(fmt.Sprint(a.body["error"]), tt.errHas) {
				t.Errorf("answer %d %v, want 413 saying %q", a.code, a.body, tt.errHas)
			}
			if diff := cmp.Diff(tt.counted, counts.m); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
			if n := len(f.jobs.submitted()); n != 0 {
				t.Errorf("%d jobs submitted, want none", n)
			}
		})
	}
}

func TestFastRouteRateLimitSaysWhenToRetry(t *testing.T) {
	f := newFixtureOn(t, "fast")
	body := githubPush("refs/heads/main", commitA, "")
	bad := delivery{project: "shop", header: http.Header{"X-Github-Event": {"push"}, "X-Hub-Signature-256": {webhook.Sign("guess", body)}}, body: body}
	for i := range failureBurst {
		if code, _ := f.send(bad); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i+1, code)
		}
	}
	request := "POST /hooks/shop HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nContent-Length: 2\r\n\r\n{}"
	a := sendRaw(t, f.url, request)
	if a.code != http.StatusTooManyRequests || a.header.Get("Retry-After") != "6" {
		t.Errorf("after %d failures: %d, Retry-After %q; want 429 and 6", failureBurst, a.code, a.header.Get("Retry-After"))
	}
}

func TestFastRouteRefusesOversizedHeaders(t *testing.T) {
	f := newFixtureOn(t, "fast")
	request := "POST /hooks/shop HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", readBufferSize) + "\r\nContent-Length: 2\r\n\r\n{}"
	if a := sendRaw(t, f.url, request); a.code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("answer %d %v, want 431", a.code, a.body)
	}
}

// TestFastRouteLeavesTheRestToEcho checks that everything but a
// delivery is answered by echo's routes, as ServeHTTP answers it.
func TestFastRouteLeavesTheRestToEcho(t *testing.T) {
	f := newFixtureOn(t, "fast")
	tests := []struct {
		method, path string
		want         int
		wantBody     map[string]any
	}{
		{"GET", "/healthz", http.StatusOK, map[string]any{"status": "ok"}},
		{"GET", "/hooks/shop", http.StatusMethodNotAllowed, map[string]any{"error": "Method Not Allowed"}},
		// echo's :project takes the rest of the path.
		{"POST", "/hooks/shop/more", http.StatusNotFound, map[string]any{"error": `job: unknown project: "shop/more"`}},
		{"POST", "/hooks/", http.StatusNotFound, map[string]any{"error": "Not Found"}},
		{"GET", "/api/jobs", http.StatusUnauthorized, map[string]any{"error": errUnauthorized.Error()}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, f.url+tt.path, bytes.NewReader(nil))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := f.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got map[string]any
			json.NewDecoder(resp.Body).Decode(&got)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d %v, want %d", resp.StatusCode, got, tt.want)
			}
			if diff := cmp.Diff(tt.wantBody, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}
