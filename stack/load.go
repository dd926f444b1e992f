package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// Bounds on what a repository may hand swarmhook.
const (
	// MaxFileBytes bounds the compose file and each config or secret
	// file it names: Swarm itself caps configs and secrets at 500 KiB.
	MaxFileBytes = 512 << 10
)

// Source says where a stack file is and what it is deployed with.
type Source struct {
	// Name is the stack's namespace.
	Name string
	// WorkTree is the job's checkout; File and the config and secret
	// files it names are read inside it only.
	WorkTree string
	// File is the compose file's path in the work tree.
	File string
	// Env are the values ${VAR} takes; nothing else is read.
	Env map[string]string
	// Images maps each of the project's image names to the reference
	// this job built (registry/name:tag@digest).
	Images map[string]string
	// Registry is swarmhook's registry host[:port].
	Registry string
}

// FileError is a stack file swarmhook will not deploy: unreadable,
// malformed, refused or inconsistent. Its message names the file and,
// where the parser or the allow-list knows it, the line; every value of
// the target's env in it is replaced by ***, since an error reaches job
// records and API answers.
type FileError struct {
	msg string
}

func (e *FileError) Error() string { return e.msg }

// minRedact is the shortest env value redacted from errors: shorter
// ones (1, true) would blank out ordinary words.
const minRedact = 4

// Load reads, checks and converts the stack file of src. Every error
// but an unreadable work tree is a *FileError; nothing has changed when
// it fails.
func Load(ctx context.Context, src Source) (*Desired, error) {
	root, err := os.OpenRoot(src.WorkTree)
	if err != nil {
		return nil, fmt.Errorf("open work tree: %w", err)
	}
	defer root.Close()
	d, err := loadFile(ctx, root, src)
	if err != nil {
		msg := err.Error()
		for _, v := range src.Env {
			if len(v) >= minRedact {
				msg = strings.ReplaceAll(msg, v, "***")
			}
		}
		return nil, &FileError{msg: msg}
	}
	return d, nil
}

func loadFile(ctx context.Context, root *os.Root, src Source) (*Desired, error) {
	data, err := readFile(root, src.File)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", src.File, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: the file is empty", src.File)
	}
	if err := checkKeys(src.File, &doc); err != nil {
		return nil, err
	}
	env := types.Mapping{}
	for k, v := range src.Env {
		env[k] = v
	}
	p, err := loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  "/nonexistent",
		ConfigFiles: []types.ConfigFile{{Filename: src.File, Content: data}},
		Environment: env,
	}, func(o *loader.Options) {
		o.SkipInclude, o.SkipExtends, o.ResolvePaths = true, true, false
		o.SkipResolveEnvironment, o.SkipResolveLabels = true, true
		o.SetProjectName(src.Name, true)
	})
	top := doc.Content[0]
	if err != nil {
		return nil, fmt.Errorf("%s%s: %w", src.File, lineIn(top, err), err)
	}
	files := func(name string) ([]byte, error) {
		full := path.Join(path.Dir(src.File), name)
		b, err := readFile(root, full)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	d, err := convert(src, p, serviceOrder(top), files)
	if err != nil {
		return nil, fmt.Errorf("%s%s: %w", src.File, lineIn(top, err), err)
	}
	return d, nil
}

// keyPath is a dotted path into the file as the loader's and convert's
// errors write it: services.web.deploy.replicas.
// Convert's errors go on after a colon (services.web: volumes: ...),
// so one word after ": " is taken as the next key when the file has it.
var keyPath = regexp.MustCompile(`\b(?:services|networks|configs|secrets|volumes)(?:\.[A-Za-z0-9_\-\[\]]+)+(?:: [a-z_]+(?:\.[a-z_]+)*)?`)

// lineIn returns ":N" for the line of the deepest node of top that the
// first key path in err's message reaches, or "" when it names none:
// the loader checks types and the schema on a map that has lost lines.
func lineIn(top *yaml.Node, err error) string {
	p := keyPath.FindString(err.Error())
	if p == "" {
		return ""
	}
	line, n := 0, top
	for _, seg := range strings.Split(strings.ReplaceAll(p, ": ", "."), ".") {
		for n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		if n.Kind != yaml.MappingNode {
			break
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == seg {
				line, next = n.Content[i].Line, n.Content[i+1]
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	if line == 0 {
		return ""
	}
	return fmt.Sprintf(":%d", line)
}

// readFile reads a regular file of at most MaxFileBytes inside root; a
// symlink out of it, a FIFO or a device is refused.
func readFile(root *os.Root, name string) ([]byte, error) {
	if path.IsAbs(name) || !fs.ValidPath(path.Clean(name)) {
		return nil, fmt.Errorf("%s: not a path inside the repository", name)
	}
	f, err := root.Open(path.Clean(name))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("read %s: larger than %d bytes", name, MaxFileBytes)
	}
	return data, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ReadEnvFile parses the operator's env file (KEY=value lines, the
// dotenv format docker compose reads) without looking anything up in
// swarmhook's own environment.
// Its values are secrets, and the parser's errors quote the line they
// stop at, value and all: an error names the file and the line only,
// since it reaches the job's record, log and API answers.
func ReadEnvFile(name string) (map[string]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read env file: %w", err)
	}
	defer f.Close()
	env, err := dotenv.ParseWithLookup(f, func(string) (string, bool) { return "", false })
	if err != nil {
		where := "it"
		if l := envFileLine.FindString(err.Error()); l != "" {
			where = l
		}
		return nil, fmt.Errorf("read env file %s: %s is not KEY=value (its text is not shown: it may hold a secret)", name, where)
	}
	return env, nil
}

// envFileLine finds the line number in the env file parser's errors.
var envFileLine = regexp.MustCompile(`^line \d+`)
