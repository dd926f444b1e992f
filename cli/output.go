package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/swarmhook/swarmhook/client"
)

// output prints records as tables for people, or with -o json as the
// server sent them.
type output struct {
	w    io.Writer
	json bool
}

// table writes rows under header, aligned.
func (o *output) table(header string, rows [][]string) error {
	tw := tabwriter.NewWriter(o.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func raws[T any](items []T, raw func(T) json.RawMessage) []json.RawMessage {
	out := make([]json.RawMessage, len(items))
	for i, it := range items {
		out[i] = raw(it)
	}
	return out
}

func (o *output) jobs(jobs []client.Job) error {
	if o.json {
		return writeJSON(o.w, map[string]any{"jobs": raws(jobs, func(j client.Job) json.RawMessage { return j.Raw })})
	}
	rows := make([][]string, len(jobs))
	for i, j := range jobs {
		rows[i] = []string{fmt.Sprint(j.ID), j.Project, fmt.Sprintf("#%d", j.Number), j.Action, j.Status, what(&j), j.Who, when(j.Created)}
	}
	return o.table("ID\tPROJECT\tBUILD\tACTION\tSTATUS\tWHAT\tWHO\tCREATED", rows)
}

// what says in a few words what a job works on.
func what(j *client.Job) string {
	var parts []string
	if j.Service != "" {
		parts = append(parts, j.Service)
	}
	if j.Branch != "" {
		parts = append(parts, j.Branch)
	}
	if j.Tag != "" {
		parts = append(parts, j.Tag)
	} else if j.Commit != "" {
		parts = append(parts, j.Commit[:min(len(j.Commit), 10)])
	}
	if j.Replicas != nil {
		parts = append(parts, fmt.Sprintf("replicas=%d", *j.Replicas))
	}
	return strings.Join(parts, " ")
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// job prints one job: its fields, then its images and services.
func (o *output) job(j *client.Job) error {
	if o.json {
		return writeJSON(o.w, j.Raw)
	}
	rows := [][]string{
		{"job", fmt.Sprintf("%d (%s #%d)", j.ID, j.Project, j.Number)},
		{"action", j.Action + " (" + j.Trigger + ")"},
		{"status", j.Status},
	}
	if w := what(j); w != "" {
		rows = append(rows, []string{"of", w})
	}
	if j.Stage != nil {
		rows = append(rows, []string{"stage", j.Stage.Name + " since " + when(j.Stage.Started)})
	}
	for _, kv := range [][2]string{{"who", j.Who}, {"created", when(j.Created)}, {"finished", when(j.Finished)}, {"error", j.Error}} {
		if kv[1] != "" && kv[1] != "-" {
			rows = append(rows, []string{kv[0], kv[1]})
		}
	}
	if err := o.fields(rows); err != nil {
		return err
	}
	if len(j.Images) > 0 {
		fmt.Fprintln(o.w)
		var ims [][]string
		for _, im := range j.Images {
			ims = append(ims, []string{im.Name, im.Tag, im.Ref})
		}
		if err := o.table("IMAGE\tTAG\tREF", ims); err != nil {
			return err
		}
	}
	if len(j.Services) > 0 {
		fmt.Fprintln(o.w)
		var svcs [][]string
		for _, s := range j.Services {
			svcs = append(svcs, []string{s.Service, s.Outcome, s.Message})
		}
		return o.table("SERVICE\tOUTCOME\tMESSAGE", svcs)
	}
	return nil
}

func (o *output) services(svcs []client.Service) error {
	if o.json {
		return writeJSON(o.w, map[string]any{"services": raws(svcs, func(s client.Service) json.RawMessage { return s.Raw })})
	}
	rows := make([][]string, len(svcs))
	for i, s := range svcs {
		digest := strings.TrimPrefix(s.Digest, "sha256:")
		rows[i] = []string{s.Name, s.Tag, fmt.Sprintf("%d/%d", s.Running, s.Desired), dash(s.UpdateState), digest[:min(len(digest), 12)]}
	}
	return o.table("SERVICE\tTAG\tREPLICAS\tUPDATE\tDIGEST", rows)
}

func (o *output) tags(t *client.Tags) error {
	if o.json {
		return writeJSON(o.w, t.Raw)
	}
	rows := make([][]string, len(t.Tags))
	for i, tg := range t.Tags {
		job := "-"
		if tg.Job != 0 {
			job = fmt.Sprint(tg.Job)
		}
		rows[i] = []string{tg.Tag, tg.Status, tg.Branch, job}
	}
	return o.table("TAG\tSTATUS\tBRANCH\tJOB", rows)
}

// started answers an action not waited for: the job and how to follow it.
func (o *output) started(id int64, did string) error {
	if o.json {
		return writeJSON(o.w, map[string]int64{"job": id})
	}
	_, err := fmt.Fprintf(o.w, "job %d %s; follow it with: swarmhook log %d -f\n", id, did, id)
	return err
}

// answer prints an answer the CLI has no table for.
func (o *output) answer(v map[string]any) error {
	if o.json {
		return writeJSON(o.w, v)
	}
	var rows [][]string
	for _, k := range slices.Sorted(maps.Keys(v)) {
		rows = append(rows, []string{k, fmt.Sprint(v[k])})
	}
	return o.fields(rows)
}

// fields writes "name:  value" lines, aligned.
func (o *output) fields(rows [][]string) error {
	tw := tabwriter.NewWriter(o.w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
