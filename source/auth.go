package source

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// TokenAuth authenticates HTTPS fetches with an access token sent as the
// basic-auth password. The token stays in memory: it is never put in a
// URL, on a command line or in an error.
func TokenAuth(username, token string) transport.AuthMethod {
	return &http.BasicAuth{Username: username, Password: token}
}

// DeployKeyAuth authenticates SSH fetches of repoURL with the private key
// in keyFile, checking the server's host key against knownHosts (or, when
// empty, $SSH_KNOWN_HOSTS, ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts).
// The SSH user is the one in repoURL, else git.
func DeployKeyAuth(repoURL, keyFile, passphrase, knownHosts string) (transport.AuthMethod, error) {
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read deploy key: %w", err)
	}
	keys, err := ssh.NewPublicKeys(sshUser(repoURL), pem, passphrase)
	if err != nil {
		// Parse errors name the key's format, never its content.
		return nil, fmt.Errorf("deploy key %s: %w", keyFile, err)
	}
	var files []string
	if knownHosts != "" {
		files = append(files, knownHosts)
	}
	cb, err := ssh.NewKnownHostsCallback(files...)
	if err != nil {
		return nil, fmt.Errorf("known hosts: %w", err)
	}
	keys.HostKeyCallback = cb
	return keys, nil
}

// sshUser is the user named in an ssh:// or user@host:path URL.
func sshUser(repoURL string) string {
	if u, err := url.Parse(repoURL); err == nil && u.Scheme == "ssh" {
		if u.User != nil && u.User.Username() != "" {
			return u.User.Username()
		}
		return "git"
	}
	if user, _, ok := strings.Cut(repoURL, "@"); ok && !strings.Contains(user, "/") {
		return user
	}
	return "git"
}

// resolveSubmoduleURL resolves a submodule URL from .gitmodules against
// the URL of the repository that names it, as git does: "./x" and "../x"
// are relative to the parent repository, anything else is used as is.
func resolveSubmoduleURL(parent, sub string) (string, error) {
	if !strings.HasPrefix(sub, "./") && !strings.HasPrefix(sub, "../") {
		return sub, nil
	}
	if u, err := url.Parse(parent); err == nil && u.Scheme != "" {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/"
		rel, err := url.Parse(sub)
		if err != nil {
			return "", fmt.Errorf("submodule url %q: %w", sub, err)
		}
		return u.ResolveReference(rel).String(), nil
	}
	// user@host:path
	host, p, ok := strings.Cut(parent, ":")
	if !ok {
		return "", errors.New("cannot resolve a relative submodule url against " + parent)
	}
	joined := cleanPath(strings.TrimSuffix(p, "/") + "/" + sub)
	return host + ":" + joined, nil
}

// cleanPath applies . and .. segments without touching a leading "/".
func cleanPath(p string) string {
	var out []string
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case ".", "":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	s := strings.Join(out, "/")
	if strings.HasPrefix(p, "/") {
		s = "/" + s
	}
	return s
}
