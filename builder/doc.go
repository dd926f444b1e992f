// Package builder turns a checked-out source tree into an image on the
// Docker engine and pushes it.
//
// The build context is streamed to the engine as a tar, honouring
// .dockerignore the way `docker build` does, and never held in memory. Build
// and push output is copied line by line into the job log as it arrives.
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
