// Package engines keeps the Docker engines images are built on: which are
// up, how many builds each runs, and which one a job gets. A job builds
// and pushes all its images on the one engine it leased, so an image
// reaches the registry from the engine that built it.
package engines
