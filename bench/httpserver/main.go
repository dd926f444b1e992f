// Command httpserver is a bare HTTP server for the intake benchmark's
// "Why fasthttp was tried" comparison: it reads each request's body and answers a
// fixed 202 with net/http, fasthttp, or fasthttp through its net/http
// adaptor, so that the intake generator (bench/intake) can measure what
// each server alone costs per request. See bench/README.md, Intake.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

var answer = []byte(`{"job":1,"coalesced":true}` + "\n")

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "listen address")
	server := flag.String("server", "nethttp", "nethttp, fasthttp or adaptor (net/http handler on fasthttp)")
	flag.Parse()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		w.Write(answer)
	})
	var err error
	switch *server {
	case "nethttp":
		err = http.ListenAndServe(*addr, h)
	case "fasthttp":
		s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
			_ = ctx.PostBody()
			ctx.SetStatusCode(http.StatusAccepted)
			ctx.SetContentType("application/json")
			ctx.Write(answer)
		}}
		err = s.ListenAndServe(*addr)
	case "adaptor":
		s := &fasthttp.Server{Handler: fasthttpadaptor.NewFastHTTPHandler(h)}
		err = s.ListenAndServe(*addr)
	default:
		err = fmt.Errorf("unknown -server %q", *server)
	}
	fmt.Fprintln(os.Stderr, "httpserver:", err)
	os.Exit(1)
}
