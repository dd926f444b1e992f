package tagpolicy

import (
	"go/build"
	"strings"
	"testing"
)

// TestPure keeps tagpolicy free of I/O and of the rest of swarmhook, so
// retention decisions stay testable on their own.
func TestPure(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{"os", "net", "io", "syscall", "database/", "github.com/"}
	for _, imp := range pkg.Imports {
		for _, f := range forbidden {
			if imp == f || strings.HasPrefix(imp, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(imp, f)) {
				t.Errorf("tagpolicy imports %s", imp)
			}
		}
	}
}
