// Package logbuf batches log lines into fewer writes. Lines below
// warning level wait up to a short delay for company and go out in one
// write; a warning or error goes out at once, with every line before
// it, and so does a full buffer.
//
// A service that logs each request at info level otherwise makes one
// write(2) per request on the request's path: at thousands of webhook
// deliveries a second that was about a twentieth of swarmhook's CPU, and
// a stderr that blocks (a full pipe, a slow log driver) stalled every
// request behind it. The price is that a crash can lose the info lines
// of its last delay; Close writes what waits.
package logbuf

import (
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Writer batches what is written to it into writes to an underlying
// writer. It is safe for concurrent use, and keeps lines in the order
// they were written.
type Writer struct {
	out   io.Writer
	delay time.Duration
	limit int

	mu     sync.Mutex
	buf    []byte
	timer  *time.Timer // flushes after delay; armed while buf holds lines
	err    error       // the last failed write's, returned by the next call
	closed bool        // writes go straight through
}

// New returns a Writer to out that holds lines for up to delay, and
// writes at once when limit bytes are waiting.
func New(out io.Writer, delay time.Duration, limit int) *Writer {
	w := &Writer{out: out, delay: delay, limit: limit}
	w.timer = time.AfterFunc(time.Hour, func() { w.Flush() })
	w.timer.Stop()
	return w
}

// Write adds p to the batch. It blocks only while a full batch is
// written.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.out.Write(p)
	}
	if len(w.buf)+len(p) > w.limit {
		w.flushLocked()
	}
	if len(w.buf) == 0 {
		w.timer.Reset(w.delay)
	}
	w.buf = append(w.buf, p...)
	return len(p), w.takeErr()
}

// WriteLevel is zerolog's entry: a warning or worse is written at once,
// after the lines before it.
func (w *Writer) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if l < zerolog.WarnLevel || l == zerolog.NoLevel {
		return w.Write(p)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	w.flushLocked()
	return len(p), w.takeErr()
}

// Flush writes what waits.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
	return w.takeErr()
}

// Close writes what waits; later writes go straight to the underlying
// writer.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
	w.closed = true
	return w.takeErr()
}

// takeErr returns the last failed write's error once, and forgets it.
func (w *Writer) takeErr() error {
	err := w.err
	w.err = nil
	return err
}

func (w *Writer) flushLocked() {
	w.timer.Stop()
	if len(w.buf) == 0 {
		return
	}
	if _, err := w.out.Write(w.buf); err != nil {
		w.err = err
	}
	w.buf = w.buf[:0]
	if cap(w.buf) > 4*w.limit {
		w.buf = nil // one huge line need not stay resident
	}
}
