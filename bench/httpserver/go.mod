// A module of its own: fasthttp is only here, to measure it beside
// net/http, and the service must not carry it.
module github.com/swarmhook/swarmhook/bench/httpserver

go 1.26.0

require github.com/valyala/fasthttp v1.78.0

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/molecule-man/go-brrr v1.3.1 // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
)
