// Command intake is the load generator of the intake benchmark: it sends
// signed GitHub push deliveries to a running swarmhook over loopback at a
// fixed rate, measures the time from each delivery's scheduled send to
// its answer, and then checks through the API that every 202 named a job
// that exists.
//
// Secrets come from the environment, never from flags, so they stay out
// of the process list: BENCH_SECRET is the project's webhook secret,
// BENCH_TOKEN an API token with the read scope.
//
// bench/intake/run.sh starts swarmhook and runs this; bench/README.md
// has the commands and results.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swarmhook/swarmhook/webhook"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "intake:", err)
		os.Exit(1)
	}
}

// delivery is one prepared request.
type delivery struct {
	body, sig []byte
	id        string
}

// result is one answer.
type result struct {
	status  int
	latency time.Duration
	job     int64
	err     error
}

func run() error {
	base := flag.String("url", "http://127.0.0.1:8080", "swarmhook base URL")
	project := flag.String("project", "bench", "project to deliver to")
	n := flag.Int("n", 50000, "deliveries to send")
	rate := flag.Float64("rate", 5000, "deliveries per second to schedule; 0 sends as fast as the workers can")
	workers := flag.Int("c", 64, "concurrent connections")
	branches := flag.Int("branches", 8, "branches the pushes spread over")
	serverPID := flag.Int("server-pid", 0, "swarmhook's process id, to report the CPU it used while deliveries were sent (Linux)")
	flag.Parse()
	secret, token := os.Getenv("BENCH_SECRET"), os.Getenv("BENCH_TOKEN")
	if secret == "" || token == "" {
		return errors.New("set BENCH_SECRET and BENCH_TOKEN in the environment")
	}

	deliveries := prepare(*n, *branches, secret)
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: *workers, MaxIdleConnsPerHost: *workers, MaxConnsPerHost: *workers},
		Timeout: 30 * time.Second}
	hookURL := *base + "/hooks/" + *project

	type task struct {
		i     int
		sched time.Time
	}
	tasks := make(chan task, *n)
	results := make([]result, *n)
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tk := range tasks {
				start := tk.sched
				if *rate == 0 {
					start = time.Now()
				}
				results[tk.i] = send(client, hookURL, deliveries[tk.i], start)
			}
		}()
	}
	cpu0, self0 := procCPU(*serverPID), procCPU(os.Getpid())
	start := time.Now()
	// Open loop: deliveries are due at fixed times whether or not earlier
	// ones were answered, and latency counts from when each was due, so a
	// slow answer cannot hide the ones queued behind it.
	for i := 0; i < *n; {
		due := *n
		if *rate > 0 {
			due = min(*n, int(time.Since(start).Seconds()**rate)+1)
		}
		for ; i < due; i++ {
			sched := start
			if *rate > 0 {
				sched = start.Add(time.Duration(float64(i) / *rate * float64(time.Second)))
			}
			tasks <- task{i, sched}
		}
		if i < *n {
			time.Sleep(time.Millisecond)
		}
	}
	close(tasks)
	wg.Wait()
	elapsed := time.Since(start)
	if *serverPID > 0 {
		cpu := procCPU(*serverPID) - cpu0
		fmt.Printf("swarmhook cpu while sending: %.1fs = %.2f cores, %.0f µs per delivery\n",
			cpu.Seconds(), cpu.Seconds()/elapsed.Seconds(), float64(cpu.Microseconds())/float64(*n))
	}
	self := procCPU(os.Getpid()) - self0
	fmt.Printf("generator cpu while sending: %.1fs = %.2f cores, %.0f µs per delivery\n",
		self.Seconds(), self.Seconds()/elapsed.Seconds(), float64(self.Microseconds())/float64(*n))

	return report(client, *base, token, results, elapsed, *rate, *workers, *branches)
}

// prepare makes every delivery before the clock starts, so the generator
// spends the run sending.
func prepare(n, branches int, secret string) []delivery {
	out := make([]delivery, n)
	for i := range out {
		commit := make([]byte, 20)
		rand.Read(commit)
		after := hex.EncodeToString(commit)
		body, _ := json.Marshal(map[string]any{
			"ref": fmt.Sprintf("refs/heads/bench-%d", i%branches), "before": "0000000000000000000000000000000000000000", "after": after,
			"repository":  map[string]string{"clone_url": "https://git.example.com/bench.git"},
			"pusher":      map[string]string{"name": "bench"},
			"head_commit": map[string]string{"id": after, "message": "bench"},
		})
		out[i] = delivery{body: body, sig: []byte(webhook.Sign(secret, body)), id: fmt.Sprintf("bench-%d-%s", i, after[:8])}
	}
	return out
}

func send(client *http.Client, url string, d delivery, start time.Time) result {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(d.body))
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", d.id)
	req.Header.Set("X-Hub-Signature-256", string(d.sig))
	resp, err := client.Do(req)
	if err != nil {
		return result{err: err, latency: time.Since(start)}
	}
	defer resp.Body.Close()
	var a struct{ Job int64 }
	b, err := io.ReadAll(resp.Body)
	lat := time.Since(start)
	if err == nil {
		json.Unmarshal(b, &a)
	}
	return result{status: resp.StatusCode, latency: lat, job: a.Job, err: err}
}

func report(client *http.Client, base, token string, results []result, elapsed time.Duration, rate float64, workers, branches int) error {
	statuses := map[int]int{}
	var errs int
	var firstErr error
	var lat202 []time.Duration
	var jobs []int64
	for _, r := range results {
		if r.err != nil {
			errs++
			firstErr = cmpErr(firstErr, r.err)
			continue
		}
		statuses[r.status]++
		if r.status == http.StatusAccepted {
			lat202 = append(lat202, r.latency)
			jobs = append(jobs, r.job)
		}
	}
	n := len(results)
	fmt.Printf("deliveries: %d in %.2fs = %.0f/s (scheduled %.0f/s, %d connections, %d branches)\n",
		n, elapsed.Seconds(), float64(n)/elapsed.Seconds(), rate, workers, branches)
	codes := make([]int, 0, len(statuses))
	for c := range statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	fmt.Print("answers:")
	for _, c := range codes {
		fmt.Printf(" %d=%d", c, statuses[c])
	}
	fmt.Printf(" transport-errors=%d\n", errs)
	if firstErr != nil {
		fmt.Printf("first transport error: %v\n", firstErr)
	}
	if len(lat202) > 0 {
		slices.Sort(lat202)
		fmt.Printf("latency to 202: p50=%s p90=%s p99=%s max=%s\n",
			pct(lat202, 50), pct(lat202, 90), pct(lat202, 99), lat202[len(lat202)-1])
	}

	lost, err := missingJobs(client, base, token, jobs)
	if err != nil {
		return err
	}
	distinct := map[int64]bool{}
	for _, j := range jobs {
		distinct[j] = true
	}
	fmt.Printf("jobs: %d answers 202, %d distinct job ids, %d of them missing from /api/jobs\n", len(jobs), len(distinct), lost)
	if lost > 0 || len(distinct) != len(jobs) || slices.Contains(jobs, 0) {
		return errors.New("deliveries lost: a 202 without its own job")
	}
	return nil
}

// procCPU is the user and system CPU process pid has used, from
// /proc/pid/stat (in clock ticks of 10 ms, Linux's USER_HZ); 0 when
// unknown.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(len(sorted)-1, i-1))].Round(10 * time.Microsecond)
}

// missingJobs asks the API for every job a 202 named and counts those it
// does not know.
func missingJobs(client *http.Client, base, token string, jobs []int64) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ids := make(chan int64)
	var mu sync.Mutex
	missing := 0
	var firstErr error
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/jobs/%d", base, id), nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				mu.Lock()
				switch {
				case err != nil:
					firstErr = cmpErr(firstErr, err)
				case resp.StatusCode == http.StatusNotFound:
					missing++
				case resp.StatusCode != http.StatusOK:
					firstErr = cmpErr(firstErr, fmt.Errorf("GET job %d: %s", id, resp.Status))
				}
				mu.Unlock()
				if resp != nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	for _, id := range jobs {
		ids <- id
	}
	close(ids)
	wg.Wait()
	if firstErr != nil {
		return missing, fmt.Errorf("check jobs: %w", firstErr)
	}
	return missing, nil
}
