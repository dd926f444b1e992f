package imageref

import "strings"

// Tagged returns the reference to tag of image name in the registry at
// host (host[:port]): host/name:tag.
func Tagged(host, name, tag string) string { return host + "/" + name + ":" + tag }

// Pinned returns ref pinned to digest (sha256:...): ref@digest. Swarm
// runs a pinned reference's digest whatever its tag points at later.
func Pinned(ref, digest string) string { return ref + "@" + digest }

// Parts are the pieces of repository[:tag][@digest]; Tag and Digest are
// empty when ref has none.
type Parts struct {
	// Repository is host/name, or just name for a Docker Hub short name.
	Repository string
	Tag        string
	Digest     string
}

// Split takes ref apart: a digest follows the '@', and a tag the last ':'
// that comes after the last '/', so the port of a registry host is never
// taken for a tag.
func Split(ref string) Parts {
	var p Parts
	ref, p.Digest, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref, p.Tag = ref[:i], ref[i+1:]
	}
	p.Repository = ref
	return p
}

// Repository returns the repository (host/name) of ref.
func Repository(ref string) string { return Split(ref).Repository }

// Tag returns the tag of ref, or "".
func Tag(ref string) string { return Split(ref).Tag }

// Digest returns the digest (sha256:...) of ref, or "".
func Digest(ref string) string { return Split(ref).Digest }

// NameIn returns the image name ref has in the registry at host: its
// repository without the leading host/. It is false when ref's
// repository is in another registry.
func NameIn(ref, host string) (string, bool) {
	name, ok := strings.CutPrefix(Repository(ref), host+"/")
	if !ok || name == "" {
		return "", false
	}
	return name, true
}
