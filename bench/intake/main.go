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
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/swarmhook/swarmhook/webhook"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "intake:", err)
		os.Exit(1)
	}
}

// delivery is one prepared request: HTTP/1.1 headers and body, signed.
type delivery struct {
	request []byte
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
	n := flag.Int("n", 50000, "deliveries to measure")
	rate := flag.Float64("rate", 5000, "deliveries per second to schedule; 0 sends as fast as the workers can")
	warmup := flag.Duration("warmup", 2*time.Second, "how long to send at the same rate before measuring (open loop only); checked for loss, reported apart")
	workers := flag.Int("c", 64, "concurrent connections")
	raw := flag.Bool("raw", true, "with -keepalive and a -rate, drive the connections with raw system calls on two OS threads (Linux), not a goroutine per connection")
	keepAlive := flag.Bool("keepalive", true, "reuse connections; false opens one per delivery, as most Git hosts do (the dial counts in its latency)")
	branches := flag.Int("branches", 8, "branches the pushes spread over")
	serverPID := flag.Int("server-pid", 0, "swarmhook's process id, to report the CPU it used while deliveries were sent (Linux)")
	cpuProfile := flag.String("cpuprofile", "", "write the generator's own CPU profile here")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	secret, token := os.Getenv("BENCH_SECRET"), os.Getenv("BENCH_TOKEN")
	if secret == "" || token == "" {
		return errors.New("set BENCH_SECRET and BENCH_TOKEN in the environment")
	}

	u, err := url.Parse(*base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-url %q: want http://host:port", *base)
	}
	warm := 0
	if *rate > 0 {
		warm = int(warmup.Seconds() * *rate)
	}
	total := warm + *n
	deliveries := prepare(u.Host, "/hooks/"+*project, total, *branches, secret, *keepAlive)
	client := &http.Client{Timeout: 30 * time.Second}

	results := make([]result, total)
	sched := func(i int) time.Duration { return time.Duration(float64(i) / *rate * float64(time.Second)) }
	var start, measured time.Time
	var cpu0, self0 time.Duration
	begin := func() time.Time {
		start = time.Now()
		measured = start
		cpu0, self0 = procCPU(*serverPID), procCPU(os.Getpid())
		return start
	}
	measure := func() {
		// The measured run starts here, on the same schedule.
		measured = start.Add(sched(warm))
		cpu0, self0 = procCPU(*serverPID), procCPU(os.Getpid())
	}
	stalls := watchStalls()
	if *raw && *keepAlive && *rate > 0 {
		err = sendRaw(u.Host, *workers, deliveries, results, sched, warm, begin, measure)
	} else {
		err = sendConns(u.Host, *workers, deliveries, results, *rate, sched, warm, !*keepAlive, begin, measure)
	}
	if err != nil {
		return err
	}
	elapsed := time.Since(measured)
	if st := stalls(); len(st) > 0 {
		// The whole machine stood still (another process, sleeping 1 ms
		// at a time, sees the same gaps at the same moments): deliveries
		// due then wait for it, whatever swarmhook does.
		fmt.Printf("machine stalls while sending (a thread sleeping 5 ms woke over 25 ms late): %d:", len(st))
		for _, x := range st {
			fmt.Printf(" %s", x.late.Round(time.Millisecond))
			if x.at.Before(measured) {
				fmt.Print(" (warm-up)")
			}
		}
		fmt.Println()
	} else {
		fmt.Println("machine stalls while sending: none")
	}
	if *serverPID > 0 {
		cpu := procCPU(*serverPID) - cpu0
		fmt.Printf("swarmhook cpu while sending: %.1fs = %.2f cores, %.0f µs per delivery\n",
			cpu.Seconds(), cpu.Seconds()/elapsed.Seconds(), float64(cpu.Microseconds())/float64(*n))
	}
	self := procCPU(os.Getpid()) - self0
	fmt.Printf("generator cpu while sending: %.1fs = %.2f cores, %.0f µs per delivery\n",
		self.Seconds(), self.Seconds()/elapsed.Seconds(), float64(self.Microseconds())/float64(*n))
	if warm > 0 {
		w := latencies(results[:warm])
		fmt.Printf("warm-up (not measured): %d deliveries in %s, p50=%s p99=%s max=%s\n",
			warm, *warmup, pct(w, 50), pct(w, 99), w[len(w)-1])
	}
	if f := os.Getenv("BENCH_LATENCIES"); f != "" {
		// Every delivery's latency in µs, in send order, warm-up first:
		// to see when the slow ones came.
		var b bytes.Buffer
		for _, r := range results {
			fmt.Fprintln(&b, r.latency.Microseconds())
		}
		if err := os.WriteFile(f, b.Bytes(), 0o644); err != nil {
			return err
		}
		// Delivery i was due at this time plus i/rate: to line slow
		// ones up with swarmhook's log.
		fmt.Printf("schedule started at %s (%d µs since the epoch)\n", start.Format(time.RFC3339Nano), start.UnixMicro())
	}
	return report(client, *base, token, results, warm, elapsed, *rate, *workers, *branches)
}

// sendConns sends deliveries[i] at sched(i) (all at once with no rate)
// over conns connections, each a goroutine fed by a channel, and fills
// results; once opens a connection per delivery. begin and measure are
// as for sendRaw.
func sendConns(addr string, conns int, deliveries []delivery, results []result, rate float64, sched func(int) time.Duration, warm int, once bool, begin func() time.Time, measure func()) error {
	type task struct {
		i     int
		sched time.Time
	}
	total := len(deliveries)
	tasks := make(chan task, total)
	// Every connection is open before the clock starts: the run measures
	// answers, not TCP handshakes.
	cs := make([]*conn, conns)
	for i := range cs {
		cs[i] = &conn{addr: addr, once: once}
		if err := cs[i].dial(); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.close()
			for tk := range tasks {
				start := tk.sched
				if rate == 0 {
					start = time.Now()
				}
				results[tk.i] = c.send(deliveries[tk.i], start)
			}
		}()
	}
	start := begin()
	// Open loop: deliveries are due at fixed times whether or not earlier
	// ones were answered, and latency counts from when each was due, so a
	// slow answer cannot hide the ones queued behind it.
	//
	// Go's timers wake about a millisecond late on Linux (time.Sleep(200µs)
	// takes 1.1 ms here), which would send most deliveries late and count
	// the lateness as swarmhook's. So the dispatcher sleeps on an OS thread
	// of its own with nanosleep(2), which wakes within tens of µs.
	runtime.LockOSThread()
	for i := 0; i < total; {
		due := total
		if rate > 0 {
			due = min(total, int(time.Since(start).Seconds()*rate)+1)
		}
		for ; i < due; i++ {
			if i == warm && warm > 0 {
				measure()
			}
			at := start
			if rate > 0 {
				at = start.Add(sched(i))
			}
			tasks <- task{i, at}
		}
		if i < total {
			if wait := time.Until(start.Add(sched(i))); wait > 0 {
				sleep(wait)
			}
		}
	}
	runtime.UnlockOSThread()
	close(tasks)
	wg.Wait()
	return nil
}

// stall is a moment the machine stood still: when, and for how long.
type stall struct {
	at   time.Time
	late time.Duration
}

// watchStalls starts a thread that sleeps 5 ms at a time and notes each
// wake-up more than 25 ms late: moments when the whole machine stood
// still. On the virtual machines these benchmarks run on, a busy guest
// now and then freezes for about 100 ms, every thread of every process
// at once. The returned func stops the watch and returns the stalls.
func watchStalls() func() []stall {
	var mu sync.Mutex
	var stalls []stall
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		for {
			select {
			case <-stop:
				return
			default:
			}
			t := time.Now()
			sleep(5 * time.Millisecond)
			if late := time.Since(t) - 5*time.Millisecond; late > 25*time.Millisecond {
				mu.Lock()
				stalls = append(stalls, stall{at: t, late: late})
				mu.Unlock()
			}
		}
	}()
	return func() []stall {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return stalls
	}
}

// latencies returns the answers' latencies, sorted.
func latencies(rs []result) []time.Duration {
	out := make([]time.Duration, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.latency)
	}
	slices.Sort(out)
	return out
}

// prepare makes every delivery before the clock starts, so the generator
// spends the run sending.
func prepare(host, path string, n, branches int, secret string, keepAlive bool) []delivery {
	connection := "keep-alive"
	if !keepAlive {
		connection = "close"
	}
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
		out[i] = delivery{request: fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nConnection: %s\r\nContent-Type: application/json\r\n"+
			"X-GitHub-Event: push\r\nX-GitHub-Delivery: bench-%d-%s\r\nX-Hub-Signature-256: %s\r\nContent-Length: %d\r\n\r\n%s",
			path, host, connection, i, after[:8], webhook.Sign(secret, body), len(body), body)}
	}
	return out
}

// conn is one keep-alive connection to swarmhook, speaking just enough
// HTTP/1.1 to send a prepared delivery and read its answer. net/http's
// client costs about as much CPU per request as the handler it calls;
// the generator stands in for Git hosts on other machines, so it should
// take as little of the shared cores as it can.
type conn struct {
	addr string
	c    net.Conn
	buf  []byte // the last answer, reused
	once bool   // a connection per delivery
}

func (c *conn) dial() error {
	nc, err := net.Dial("tcp", c.addr)
	if err != nil {
		return err
	}
	c.c = nc
	return nil
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
	}
}

// send writes d's request and reads the answer, reconnecting once if
// the connection was closed while idle.
func (c *conn) send(d delivery, start time.Time) result {
	for attempt := 0; ; attempt++ {
		if c.c == nil {
			if err := c.dial(); err != nil {
				return result{err: err, latency: time.Since(start)}
			}
		}
		status, body, err := c.roundTrip(d.request)
		if err != nil {
			c.c.Close()
			c.c = nil
			if attempt == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
				continue
			}
			return result{err: err, latency: time.Since(start)}
		}
		lat := time.Since(start)
		r := result{status: status, latency: lat, job: jobID(body)}
		if c.once {
			c.close()
			c.c = nil
		}
		return r
	}
}

func (c *conn) roundTrip(req []byte) (int, []byte, error) {
	if _, err := c.c.Write(req); err != nil {
		return 0, nil, err
	}
	c.buf = c.buf[:0]
	for {
		if len(c.buf) == cap(c.buf) {
			c.buf = slices.Grow(c.buf, 4096)
		}
		n, err := c.c.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		if status, body, size, perr := parseAnswer(c.buf); perr != nil || size > 0 {
			return status, body, perr
		}
		if err != nil {
			if err == io.EOF && len(c.buf) > 0 {
				err = io.ErrUnexpectedEOF // cut off inside an answer
			}
			return 0, nil, err
		}
	}
}

// parseAnswer reads one HTTP/1.1 answer from the front of b: its status,
// body and size in b; size 0 while the answer is incomplete.
func parseAnswer(b []byte) (status int, body []byte, size int, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return 0, nil, 0, nil
	}
	head := b[:end]
	// "HTTP/1.1 202 Accepted"
	if len(head) < 12 {
		return 0, nil, 0, fmt.Errorf("bad status line %q", head)
	}
	if status, err = strconv.Atoi(string(head[9:12])); err != nil {
		return 0, nil, 0, fmt.Errorf("bad status line %q", head)
	}
	length := -1
	for rest := head; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, nil, 0, fmt.Errorf("bad Content-Length %q", v)
			}
		}
	}
	if length < 0 {
		return 0, nil, 0, errors.New("answer without Content-Length")
	}
	size = end + 4 + length
	if len(b) < size {
		return 0, nil, 0, nil
	}
	return status, b[end+4 : size], size, nil
}

// jobID reads "job" from an answer, 0 when it names none. The answer is
// swarmhook's compact JSON, so a look for the key does, without the
// allocations of a decoder (the generator runs with its collector off).
func jobID(body []byte) int64 {
	_, rest, ok := bytes.Cut(body, []byte(`"job":`))
	if !ok {
		return 0
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	id, _ := strconv.ParseInt(string(rest[:end]), 10, 64)
	return id
}

// report prints what the measured deliveries (results[warm:]) got, and
// checks that no delivery, warm-up included, was lost.
func report(client *http.Client, base, token string, results []result, warm int, elapsed time.Duration, rate float64, workers, branches int) error {
	statuses := map[int]int{}
	var errs int
	var firstErr error
	var lat202 []time.Duration
	var jobs []int64
	for i, r := range results {
		if r.err != nil {
			errs++
			firstErr = cmpErr(firstErr, r.err)
			continue
		}
		statuses[r.status]++
		if r.status == http.StatusAccepted {
			jobs = append(jobs, r.job)
			if i >= warm {
				lat202 = append(lat202, r.latency)
			}
		}
	}
	n := len(results) - warm
	fmt.Printf("deliveries: %d measured in %.2fs = %.0f/s (scheduled %.0f/s, %d connections, %d branches), after %d warm-up\n",
		n, elapsed.Seconds(), float64(n)/elapsed.Seconds(), rate, workers, branches, warm)
	codes := make([]int, 0, len(statuses))
	for c := range statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	fmt.Print("answers (warm-up included):")
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

	// No delivery lost: every 202 names a job the API returns, and each
	// job that has started counts exactly the pushes whose 202 named it
	// (one that queued it and those that joined it while it waited).
	answered := map[int64]int{}
	for _, j := range jobs {
		answered[j]++
	}
	pushes, missing, err := jobPushes(client, base, token, answered)
	if err != nil {
		return err
	}
	mismatched := 0
	for id, n := range answered {
		if p, ok := pushes[id]; ok && p >= 0 && p != n {
			mismatched++
		}
	}
	fmt.Printf("jobs: %d answers 202 in %d jobs (%d pushes joined a waiting build); %d jobs missing from /api/jobs, %d with a push count that differs from their 202s\n",
		len(jobs), len(answered), len(jobs)-len(answered), missing, mismatched)
	if missing > 0 || mismatched > 0 || answered[0] > 0 {
		return errors.New("deliveries lost: a 202 whose push no job records")
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

// jobPushes asks the API for every job a 202 named and returns each
// one's push count, and how many it does not know.
func jobPushes(client *http.Client, base, token string, jobs map[int64]int) (map[int64]int, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ids := make(chan int64)
	var mu sync.Mutex
	pushes := map[int64]int{}
	missing := 0
	var firstErr error
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				n, found, err := getPushes(ctx, client, base, token, id)
				mu.Lock()
				switch {
				case err != nil:
					firstErr = cmpErr(firstErr, err)
				case !found:
					missing++
				default:
					pushes[id] = n
				}
				mu.Unlock()
			}
		}()
	}
	for id := range jobs {
		ids <- id
	}
	close(ids)
	wg.Wait()
	if firstErr != nil {
		return nil, missing, fmt.Errorf("check jobs: %w", firstErr)
	}
	return pushes, missing, nil
}

// getPushes reads one job's push count: -1 while it is queued.
func getPushes(ctx context.Context, client *http.Client, base, token string, id int64) (int, bool, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/jobs/%d", base, id), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return 0, false, nil
	default:
		return 0, false, fmt.Errorf("GET job %d: %s", id, resp.Status)
	}
	var j struct {
		Pushes int    `json:"pushes"`
		Status string `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil {
		return 0, false, fmt.Errorf("GET job %d: %w", id, err)
	}
	if j.Status == "queued" {
		// Pushes that joined a waiting build are held in memory until
		// it starts (README, History and restarts): its record may count
		// fewer yet.
		return -1, true, nil
	}
	return j.Pushes, true, nil
}
