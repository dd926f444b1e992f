package tagpolicy

import (
	"go/build"
	"slices"
	"strings"
	"testing"
)

// allowed are imports a forbidden prefix would catch but that do no I/O
// here: doublestar is the one glob dialect swarmhook matches names in,
// and tagpolicy calls only its pure Match and ValidatePattern.
var allowed = []string{"github.com/bmatcuk/doublestar/v4"}

// TestPure keeps tagpolicy free of I/O and of the rest of swarmhook, so
// retention decisions stay testable on their own.
func TestPure(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{"os", "net", "io", "syscall", "database/", "github.com/"}
	for _, imp := range pkg.Imports {
		if slices.Contains(allowed, imp) {
			continue
		}
		for _, f := range forbidden {
			if imp == f || strings.HasPrefix(imp, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(imp, f)) {
				t.Errorf("tagpolicy imports %s", imp)
			}
		}
	}
}
