package dashboard

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/job"
)

// logChunk is the most of a log one page or request carries: a 10 MB
// log opens at its end and loads earlier parts on demand.
const logChunk = 64 << 10

type jobData struct {
	Job       *job.Job
	CommitURL string
	Bars      []bar
	Log       string
	// LogStart and LogEnd are the byte offsets of Log in the whole log.
	LogStart, LogEnd int64
}

// bar is one stage or service update on the job's time axis, as
// percentages of the axis.
type bar struct {
	Name        string
	Left, Width float64
	Took        time.Duration
	Running     bool
}

// pathJob reads the job the path's {id} names.
func (h *Handler) pathJob(r *http.Request) (*job.Job, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return nil, fmt.Errorf("%w: job id %q is not a positive number", errBadRequest, r.PathValue("id"))
	}
	j, err := h.d.Jobs.Get(r.Context(), id)
	if err != nil {
		return nil, fmt.Errorf("job %d: %w", id, err)
	}
	return j, nil
}

// job is one job: status, commit, images, a timeline, per-service
// outcomes, and its log's last part, which the page's script follows
// while the job runs. With ?part=summary it answers only the part above
// the log, which the script refreshes as the job goes.
func (h *Handler) job(w http.ResponseWriter, r *http.Request, v view) error {
	j, err := h.pathJob(r)
	if err != nil {
		return err
	}
	id := j.ID
	d := jobData{Job: j, Bars: timeline(j, h.d.Now())}
	if p, ok := h.d.Config.Project(j.Project); ok && j.Commit != "" {
		d.CommitURL = commitURL(p, j.Commit)
	}
	v.Title, v.Nav, v.Data = fmt.Sprintf("%s #%d", j.Project, j.Number), "jobs", d
	if r.URL.Query().Get("part") == "summary" { // the page's script refreshing it
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		return h.pages["job"].ExecuteTemplate(w, "summary", v)
	}
	text, start, end, err := h.readLog(id, -1, -1)
	if err != nil {
		return err
	}
	d.Log, d.LogStart, d.LogEnd = text, start, end
	v.Data = d
	return h.render(w, "job", v)
}

// logChunk answers part of a job's log as text: ?from=N the bytes from
// offset N on (to follow a running job), ?before=N the part before N (to
// scroll back). X-Log-Start and X-Log-End give the part's offsets,
// X-Job-Status the job's status when it was read.
func (h *Handler) logChunk(w http.ResponseWriter, r *http.Request, _ view) error {
	j, err := h.pathJob(r)
	if err != nil {
		return err
	}
	id := j.ID
	from, before := int64(-1), int64(-1)
	for name, dst := range map[string]*int64{"from": &from, "before": &before} {
		if s := r.URL.Query().Get(name); s != "" {
			if *dst, err = strconv.ParseInt(s, 10, 64); err != nil || *dst < 0 {
				return fmt.Errorf("%w: %s=%q is not an offset", errBadRequest, name, s)
			}
		}
	}
	text, start, end, err := h.readLog(id, from, before)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Log-Start", strconv.FormatInt(start, 10))
	w.Header().Set("X-Log-End", strconv.FormatInt(end, 10))
	w.Header().Set("X-Job-Status", string(j.Status))
	io.WriteString(w, text)
	return nil
}

// readLog reads at most logChunk bytes of job id's log, in whole lines:
// from offset from on when from >= 0, else the part ending at before
// (or at the log's end when before < 0). It returns the text and its
// start and end offsets.
func (h *Handler) readLog(id, from, before int64) (string, int64, int64, error) {
	rc, err := h.d.Logs.Open(id)
	if err != nil {
		return "", 0, 0, fmt.Errorf("open log of job %d: %w", id, err)
	}
	defer rc.Close()
	rs, ok := rc.(io.ReadSeeker)
	if !ok { // not a file: read it, fine for the small ones
		b, err := io.ReadAll(rc)
		if err != nil {
			return "", 0, 0, fmt.Errorf("read log of job %d: %w", id, err)
		}
		rs = bytes.NewReader(b)
	}
	size, err := rs.Seek(0, io.SeekEnd)
	if err != nil {
		return "", 0, 0, fmt.Errorf("size log of job %d: %w", id, err)
	}
	var start, end int64
	switch {
	case from >= 0:
		start, end = min(from, size), min(from+logChunk, size)
	case before >= 0:
		end = min(before, size)
		start = max(0, end-logChunk)
	default:
		end = size
		start = max(0, end-logChunk)
	}
	buf := make([]byte, end-start)
	if _, err := rs.Seek(start, io.SeekStart); err != nil {
		return "", 0, 0, fmt.Errorf("seek log of job %d: %w", id, err)
	}
	if _, err := io.ReadFull(rs, buf); err != nil {
		return "", 0, 0, fmt.Errorf("read log of job %d: %w", id, err)
	}
	// Whole lines only: a cut line (or rune) is left for the next read.
	if from < 0 && start > 0 {
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf, start = buf[i+1:], start+int64(i)+1
		}
	}
	if from >= 0 && end < size {
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			buf, end = buf[:i+1], start+int64(i)+1
		}
	}
	return string(buf), start, end, nil
}

// timeline places the job's stages and service updates on one time
// axis, from the job's start to its end (or now), so stages that
// overlap show as bars that overlap.
func timeline(j *job.Job, now time.Time) []bar {
	t0, t1 := j.Started, j.Finished
	if t0.IsZero() {
		return nil
	}
	if t1.IsZero() {
		t1 = now
	}
	total := t1.Sub(t0)
	if total <= 0 {
		total = time.Millisecond
	}
	pct := func(d time.Duration) float64 { return max(0, min(100, float64(d)*100/float64(total))) }
	var out []bar
	add := func(name string, s, f time.Time) {
		if s.IsZero() {
			return
		}
		running := f.IsZero()
		if running {
			f = t1
		}
		left := pct(s.Sub(t0))
		out = append(out, bar{Name: name, Left: left, Width: max(0.5, min(100-left, pct(f.Sub(s)))), Took: f.Sub(s).Round(time.Millisecond), Running: running})
	}
	for _, s := range j.Stages {
		add(s.Name, s.Started, s.Finished)
	}
	if j.Stage != nil {
		add(j.Stage.Name, j.Stage.Started, time.Time{})
	}
	for _, s := range j.Services {
		add("update "+s.Service, s.Started, s.Finished)
	}
	return out
}

// commitURL links a commit on its Git host, for http(s) and
// git@host:path repositories; never with the URL's credentials.
func commitURL(p *config.Project, commit string) string {
	repo := p.Repo
	if rest, ok := strings.CutPrefix(repo, "git@"); ok {
		host, path, _ := strings.Cut(rest, ":")
		repo = "https://" + host + "/" + path
	}
	u, err := url.Parse(repo)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), ".git") + "/commit/" + url.PathEscape(commit)
	u.RawPath = ""
	return u.String()
}
