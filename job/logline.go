package job

import (
	"fmt"
	"io"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Printable returns s as it is when every character of it prints, or
// else quoted Go-style (strconv.Quote), so that text from outside (a
// pusher's name, a commit message, an error quoting a Dockerfile) put in
// a job log or a notification line can neither start a line of its own
// nor send a terminal escape.
func Printable(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// escaper writes a job log through to w with every character that does
// not print, other than newline and tab, written as its Go escape: a
// carriage return as \r, ESC as \x1b, a byte that is not UTF-8 as \xff.
// Whatever a build or a repository prints, it cannot move a reader's
// cursor, clear the screen, or rewrite a line swarmhook wrote.
type escaper struct {
	w io.WriteCloser
	// partial is the start of a character the last Write cut off.
	partial []byte
}

func (e *escaper) Write(p []byte) (int, error) {
	n := len(p)
	p = append(e.partial, p...)
	var out []byte
	for len(p) > 0 && utf8.FullRune(p) {
		r, size := utf8.DecodeRune(p)
		out = appendEscaped(out, r, p[:size])
		p = p[size:]
	}
	e.partial = append([]byte(nil), p...)
	if _, err := e.w.Write(out); err != nil {
		return 0, fmt.Errorf("write job log: %w", err)
	}
	return n, nil
}

// appendEscaped appends character r, encoded as b, to out: as it is when
// it prints or is a newline or tab, or else as its escape.
func appendEscaped(out []byte, r rune, b []byte) []byte {
	switch {
	case r == utf8.RuneError && len(b) == 1:
		return fmt.Appendf(out, `\x%02x`, b[0])
	case r == '\n' || r == '\t' || unicode.IsPrint(r):
		return append(out, b...)
	}
	q := strconv.QuoteRune(r) // 'x' with x escaped
	return append(out, q[1:len(q)-1]...)
}

// Close writes out a character cut off at the end, escaped, and closes
// the log.
func (e *escaper) Close() error {
	for _, b := range e.partial {
		e.w.Write(fmt.Appendf(nil, `\x%02x`, b))
	}
	return e.w.Close()
}
