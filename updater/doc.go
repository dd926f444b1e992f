// Package updater rolls Swarm services onto new images and reports, from
// Swarm's own state, how each update ended.
//
// An update changes only the service's image (pinned by digest) and its
// rolling-update settings; every other part of the spec stays as the
// operator left it. Update then waits until Swarm reports the update
// completed and every running task is on the new image, or until Swarm
// rolls it back, pauses it, or the deadline passes.
package updater
