// Package builder turns a checked-out source tree into an image on the
// Docker engine and pushes it.
//
// Two builders: BuildKit (Kind BuildKit), which reads the context over a
// session on a hijacked Engine API connection as `DOCKER_BUILDKIT=1 docker
// build` does and serves build secrets over it; and the classic builder,
// to which the context is streamed as a tar. Either way .dockerignore is
// honoured the way `docker build` does, nothing is held in memory, and
// build and push output is copied line by line into the job log as it
// arrives, with secret values replaced.
//
// The context, the Dockerfile and .dockerignore are resolved inside the
// job's work tree, symlinks followed only while they stay there; the two
// files must be small regular files, and symlinks in the context are sent
// as symlinks, so nothing a repository holds makes the build read a host
// file.
//
// Engine is the only type here that talks to Docker; its Client interface
// lists just the Engine API calls it makes.
package builder
