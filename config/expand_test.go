package config

import (
	"strings"
	"testing"
)

// TestExpand pins what os.Expand, as Load uses it, makes of '$' in a
// value: ${VAR} and $VAR are variables; a '$' that starts no name stays
// as written, and so does a value that names no variable.
func TestExpand(t *testing.T) {
	vars := env(map[string]string{"DIR": "/srv/data", "EMPTY": "", "A_1": "a"})
	tests := []struct{ value, want string }{
		{"${DIR}", "/srv/data"},
		{"$DIR", "/srv/data"},
		{"${DIR}/x-${A_1}", "/srv/data/x-a"},
		{"pre${EMPTY}post", "prepost"},
		{"pa$$word", "pa$$word"},
		{"$1 and $* and $", "$1 and $* and $"},
		{"${DIR}$$", "/srv/data$$"},
		{"${not-a-name}", "${not-a-name}"},
		{"${}", "${}"},
		{"cost: 5$", "cost: 5$"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c, err := Load(strings.NewReader("data_dir: '"+tt.value+"'\n"), vars)
			if err != nil {
				t.Fatal(err)
			}
			if c.DataDir != tt.want {
				t.Errorf("data_dir %q read as %q, want %q", tt.value, c.DataDir, tt.want)
			}
		})
	}
}

func TestExpandRefusesUnsetVariables(t *testing.T) {
	for _, value := range []string{"${NOPE}", "$NOPE", "x${DIR}${NOPE}"} {
		_, err := Load(strings.NewReader("listen: :1\ndata_dir: '"+value+"'\n"), env(map[string]string{"DIR": "d"}))
		if want := "line 2: data_dir: environment variable NOPE is not set"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", value, err, want)
		}
	}
}
