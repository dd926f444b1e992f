package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/swarmhook/swarmhook/config"
	"github.com/swarmhook/swarmhook/engines"
)

type fixedEngines []engines.State

func (f fixedEngines) States() []engines.State { return f }

func TestReadyzListsBuildEngines(t *testing.T) {
	states := fixedEngines{{Name: "a", Error: "dial unix /a: connection refused"}, {Name: "b", Up: true, Running: 1}}
	s := New(Deps{Config: &config.Config{}, Log: zerolog.Nop(), Engines: states,
		Ready: []Check{{"engines", probe(nil)}}, Warn: []Check{{"engine a", probe(errors.New("down"))}}})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("code %d with one engine up: %s", rec.Code, rec.Body)
	}
	var a readyAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]engines.State(states), a.Engines); diff != "" {
		t.Errorf("engines (-want +got):\n%s", diff)
	}
}
