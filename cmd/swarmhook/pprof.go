//go:build pprof

// Built with -tags pprof (bench/intake/run.sh does with BUILD_TAGS=pprof),
// swarmhook serves net/http/pprof on PPROF_ADDR, to profile a benchmark
// run. Release builds never include it.

package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("PPROF_ADDR"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}
