package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/labstack/echo/v4"
)

// maxAPIBody is the largest JSON body the API takes; its bodies are a
// tag, a branch or a number.
const maxAPIBody = 64 << 10

// readBody reads a request body of at most limit bytes. A declared
// length over the limit is refused before a byte is read; otherwise the
// body is read as it arrives, so memory follows the bytes received and
// never what a client declared. what names the body in errors.
func readBody(c echo.Context, limit int64, what string) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: %s of %d bytes declared, the limit is %d", errTooLarge, what, r.ContentLength, limit)
	}
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(c.Response(), r.Body, limit))
	var tooLarge *http.MaxBytesError
	var ne net.Error
	switch {
	case err == nil:
		return buf.Bytes(), nil
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("%w: %s is over the limit of %d bytes", errTooLarge, what, limit)
	case errors.As(err, &ne) && ne.Timeout():
		return nil, fmt.Errorf("%w: read %s: %w", errBodyTimeout, what, err)
	default:
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
}

// bind decodes an optional JSON body into v; an empty body is fine, and
// so is one of only white space. Unknown fields and anything after the
// JSON value are refused.
func bind(c echo.Context, v any) error {
	body, err := readBody(c, maxAPIBody, "body")
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); errors.Is(err, io.EOF) {
		return nil
	} else if err != nil {
		return fmt.Errorf("%w: body: %v", errBadRequest, err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: body: data after the JSON value, which ends at byte %d; send one object", errBadRequest, end)
	}
	return nil
}
