package job

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/swarmhook/swarmhook/source"
)

// chattySource checks out like the recorder after writing say to the
// job log, as source.Mirrors writes a commit's message.
type chattySource struct {
	*recorder
	say string
}

func (c chattySource) Checkout(ctx context.Context, repo source.Repo, ref, commit, dest string, w io.Writer) (string, error) {
	io.WriteString(w, c.say)
	return c.recorder.Checkout(ctx, repo, ref, commit, dest, w)
}

// TestOutsideTextCannotForgeJobLogLines: a pusher's name, a commit
// message or an error carrying a newline, a carriage return or a terminal
// escape neither starts a line of the job log nor reaches it raw. Every
// job here fails, so no line may say SUCCEEDED.
func TestOutsideTextCannotForgeJobLogLines(t *testing.T) {
	tests := []struct {
		name    string
		who     string
		say     string // written by the checkout
		failErr error  // the build's error
		wantLog string
	}{
		{name: "pusher name with a newline", who: "mallory\nSUCCEEDED", failErr: errors.New("boom"),
			wantLog: `triggered by push ("mallory\nSUCCEEDED")`},
		{name: "pusher name with a terminal escape", who: "mallory\x1b[2J", failErr: errors.New("boom"),
			wantLog: `("mallory\x1b[2J")`},
		{name: "commit message with escapes", say: "checking out c0ffee (fix\x1b[2J\rSUCCEEDED)\n", failErr: errors.New("boom"),
			wantLog: `checking out c0ffee (fix\x1b[2J\rSUCCEEDED)` + "\n"},
		{name: "error with a newline", failErr: errors.New("step failed\nSUCCEEDED"),
			wantLog: `FAILED: "build: image shop/api: step failed\nSUCCEEDED"` + "\n"},
		{name: "bytes that are not UTF-8", say: "caf\xc3 \x9b2J\n", failErr: errors.New("boom"),
			wantLog: `caf\xc3 \x9b2J` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			rec.failOn["build reg:5000/shop/api:main-20261126101500"] = tt.failErr
			logs := &bufLogs{}
			j := runWithDeps(t, rec, shopConfig, Request{Project: "shop", Trigger: TriggerPush, Ref: "refs/heads/main", Branch: "main", Commit: "c0ffee", Who: tt.who},
				func(d *Deps) { d.Logs, d.Source = logs, chattySource{rec, tt.say} })
			if j.Status != Failed {
				t.Fatalf("status %s, want failed", j.Status)
			}
			log := logs.text(j.ID)
			for _, line := range strings.Split(log, "\n") {
				if strings.HasPrefix(line, "SUCCEEDED") {
					t.Errorf("a line of the log says SUCCEEDED:\n%s", log)
				}
			}
			if i := strings.IndexFunc(log, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 }); i >= 0 {
				t.Errorf("control character %q at %d of the log:\n%q", log[i], i, log)
			}
			if !utf8.ValidString(log) {
				t.Errorf("log is not UTF-8: %q", log)
			}
			if !strings.Contains(log, tt.wantLog) {
				t.Errorf("log does not have %q:\n%s", tt.wantLog, log)
			}
		})
	}
}

// TestEscaperKeepsWhatPrints writes in pieces that cut characters in two
// and checks that only what does not print is escaped.
func TestEscaperKeepsWhatPrints(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"plain lines and tabs", []string{"==> build\n", "Step 1/2 :\tFROM x\n"}, "==> build\nStep 1/2 :\tFROM x\n"},
		{"a character cut in two", []string{"caf\xc3", "\xa9 \xe2\x9c", "\x93\n"}, "café ✓\n"},
		{"a cut character never finished", []string{"caf\xc3"}, `caf\xc3`},
		{"carriage return and escapes", []string{"50%\r100%\x1b[2J\x07\n"}, `50%\r100%\x1b[2J\a` + "\n"},
		{"C1 and line separators", []string{"a\u009b2Jb\u2028c\u202ed\n"}, `a\u009b2Jb\u2028c\u202ed` + "\n"},
		{"a byte that is not UTF-8", []string{"\xff\n"}, `\xff` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			e := &escaper{w: nopCloser{&buf}}
			for _, w := range tt.writes {
				if n, err := e.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want {
				t.Errorf("log = %q, want %q", buf.String(), tt.want)
			}
		})
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"tess", "tess"},
		{"Tess Ter-Müller", "Tess Ter-Müller"},
		{"", ""},
		{"mallory\nSUCCEEDED", `"mallory\nSUCCEEDED"`},
		{"x\x1b[2J", `"x\x1b[2J"`},
		{"tab\there", `"tab\there"`},
		{"\xff", `"\xff"`},
	}
	for _, tt := range tests {
		if got := Printable(tt.in); got != tt.want {
			t.Errorf("Printable(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzEscaper writes any bytes, cut anywhere, and checks the log holds
// only what prints, newlines and tabs, is UTF-8, and is unchanged when
// that is all the input held.
func FuzzEscaper(f *testing.F) {
	f.Add([]byte("==> build\nStep 1/2\n"), 3)
	f.Add([]byte("caf\xc3\xa9\x1b[2J\r\xff\u2028"), 4)
	f.Fuzz(func(t *testing.T, in []byte, cut int) {
		var buf bytes.Buffer
		e := &escaper{w: nopCloser{&buf}}
		cut = min(max(cut, 0), len(in))
		e.Write(in[:cut])
		e.Write(in[cut:])
		e.Close()
		out := buf.String()
		if !utf8.ValidString(out) {
			t.Fatalf("log %q of %q is not UTF-8", out, in)
		}
		for _, r := range out {
			if r != '\n' && r != '\t' && !unicode.IsPrint(r) {
				t.Fatalf("log %q of %q holds %U", out, in, r)
			}
		}
		clean := utf8.Valid(in) && !strings.ContainsFunc(string(in), func(r rune) bool { return r != '\n' && r != '\t' && !unicode.IsPrint(r) })
		if clean && out != string(in) {
			t.Fatalf("log %q, want %q unchanged", out, in)
		}
	})
}
