package logbuf

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// writes records each write it gets.
type writes struct {
	mu  sync.Mutex
	got []string
	err error
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, string(p))
	return len(p), w.err
}

func (w *writes) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.got...)
}

func TestWhenLinesGoOut(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
		write func(w *Writer, log zerolog.Logger)
		want  []string // the writes out, in order
	}{
		{
			name:  "info lines wait",
			limit: 1 << 10,
			write: func(w *Writer, log zerolog.Logger) { log.Info().Msg("a"); log.Info().Msg("b") },
			want:  nil,
		},
		{
			name:  "a warning takes the lines before it along",
			limit: 1 << 10,
			write: func(w *Writer, log zerolog.Logger) { log.Info().Msg("a"); log.Debug().Msg("b"); log.Warn().Msg("c") },
			want:  []string{`{"level":"info","message":"a"}` + "\n" + `{"level":"debug","message":"b"}` + "\n" + `{"level":"warn","message":"c"}` + "\n"},
		},
		{
			name:  "an error alone",
			limit: 1 << 10,
			write: func(w *Writer, log zerolog.Logger) { log.Error().Msg("x") },
			want:  []string{`{"level":"error","message":"x"}` + "\n"},
		},
		{
			name:  "a full buffer goes out before the line that does not fit",
			limit: 70,
			write: func(w *Writer, log zerolog.Logger) { log.Info().Msg("a"); log.Info().Msg("b"); log.Info().Msg("c") },
			want:  []string{`{"level":"info","message":"a"}` + "\n" + `{"level":"info","message":"b"}` + "\n"},
		},
		{
			name:  "flush",
			limit: 1 << 10,
			write: func(w *Writer, log zerolog.Logger) { log.Info().Msg("a"); w.Flush(); log.Info().Msg("b") },
			want:  []string{`{"level":"info","message":"a"}` + "\n"},
		},
		{
			name:  "after close, straight through",
			limit: 1 << 10,
			write: func(w *Writer, log zerolog.Logger) { log.Info().Msg("a"); w.Close(); log.Info().Msg("b") },
			want:  []string{`{"level":"info","message":"a"}` + "\n", `{"level":"info","message":"b"}` + "\n"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := &writes{}
			// A delay no test waits for: only the other triggers write.
			w := New(out, time.Hour, tc.limit)
			tc.write(w, zerolog.New(w).Level(zerolog.DebugLevel))
			if got := out.all(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("writes:\n%q\nwant:\n%q", got, tc.want)
			}
		})
	}
}

func TestDelayWritesWhatWaits(t *testing.T) {
	out := &writes{}
	w := New(out, time.Millisecond, 1<<10)
	log := zerolog.New(w)
	log.Info().Msg("a")
	log.Info().Msg("b")
	deadline := time.Now().Add(10 * time.Second)
	for len(out.all()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the delay passed and nothing was written")
		}
		time.Sleep(time.Millisecond)
	}
	if got := strings.Join(out.all(), ""); got != `{"level":"info","message":"a"}`+"\n"+`{"level":"info","message":"b"}`+"\n" {
		t.Errorf("written %q", got)
	}
}

func TestConcurrentLinesKeepTheirOrder(t *testing.T) {
	var out bytes.Buffer
	w := New(&out, time.Millisecond, 512)
	log := zerolog.New(w)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				if i%100 == 99 {
					log.Warn().Int("g", g).Int("i", i).Send()
				} else {
					log.Info().Int("g", g).Int("i", i).Send()
				}
			}
		}()
	}
	wg.Wait()
	w.Close()
	next := map[int]int{}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	for _, l := range lines {
		var g, i int
		if _, err := fmt.Sscanf(l[strings.Index(l, `"g":`):], `"g":%d,"i":%d}`, &g, &i); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
	if len(lines) != 8*500 {
		t.Errorf("%d lines, want %d", len(lines), 8*500)
	}
}

func TestAFailedWriteIsReported(t *testing.T) {
	out := &writes{err: errors.New("disk full")}
	w := New(out, time.Hour, 1<<10)
	if _, err := w.Write([]byte("a\n")); err != nil {
		t.Fatalf("a batched write failed before anything was written: %v", err)
	}
	if err := w.Flush(); err == nil || err.Error() != "disk full" {
		t.Errorf("Flush = %v, want the underlying writer's error", err)
	}
	if err := w.Flush(); err != nil {
		t.Errorf("the error was reported twice: %v", err)
	}
}
