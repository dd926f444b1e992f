package builder

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	controlapi "github.com/moby/buildkit/api/services/control"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type fakePinger struct {
	ping types.Ping
	err  error
}

func (f fakePinger) Ping(context.Context) (types.Ping, error) { return f.ping, f.err }

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		ping types.Ping
		want Kind
	}{
		{"engine names BuildKit", types.Ping{BuilderVersion: build.BuilderBuildKit, APIVersion: "1.43", OSType: "linux"}, BuildKit},
		{"Docker 20.10 names none", types.Ping{APIVersion: "1.41", OSType: "linux"}, BuildKit},
		{"too old for sessions", types.Ping{APIVersion: "1.38", OSType: "linux"}, Classic},
		{"Windows engine", types.Ping{APIVersion: "1.41", OSType: "windows"}, Classic},
		{"engine names the classic builder", types.Ping{BuilderVersion: build.BuilderV1, APIVersion: "1.30", OSType: "linux"}, Classic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Detect(context.Background(), fakePinger{ping: tt.ping})
			if err != nil || got != tt.want {
				t.Errorf("Detect = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := Detect(context.Background(), fakePinger{err: errors.New("connection refused")}); err == nil {
		t.Error("Detect of an engine that does not answer should fail")
	}
}

func TestSecretsNeedBuildKit(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch"})
	f := &fakeClient{}
	_, err := NewEngine(f, "", Classic).Build(context.Background(), Request{ContextDir: dir, Dockerfile: "Dockerfile", Secrets: map[string]string{"a": "b"}}, &strings.Builder{})
	if !errors.Is(err, ErrSecretsNeedBuildKit) {
		t.Errorf("err = %v, want ErrSecretsNeedBuildKit", err)
	}
	if f.gotBuild.Tags != nil || f.gotContext != nil {
		t.Error("the engine was asked to build")
	}
}

// TestRedactsSecrets: a secret value in the engine's output
// or error is replaced in the log and the error.
func TestRedactsSecrets(t *testing.T) {
	var log strings.Builder
	rw := &redactor{w: &log, secrets: map[string]string{"token": "hunter2-xyz"}}
	rw.Write([]byte("step says hunter2-xyz twice: hunter2-xyz\n"))
	if got := log.String(); got != "step says *** twice: ***\n" {
		t.Errorf("log = %q", got)
	}
	err := redactErr(errors.New("RUN failed: hunter2-xyz"), rw.secrets)
	if strings.Contains(err.Error(), "hunter2-xyz") {
		t.Errorf("error = %v", err)
	}
	plain := errors.New("no secret here")
	if redactErr(plain, rw.secrets) != plain {
		t.Error("an error without a secret should be returned as is")
	}
}

// TestProgressLines: BuildKit's status stream becomes one line per step
// started, per output line, and per cached or failed step.
func TestProgressLines(t *testing.T) {
	trace := func(st *controlapi.StatusResponse) json.RawMessage {
		dt, err := proto.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(dt)
		return raw
	}
	now := timestamppb.Now()
	var log strings.Builder
	p := &progress{w: &log, seen: map[string]int{}}
	p.trace(trace(&controlapi.StatusResponse{Vertexes: []*controlapi.Vertex{
		{Digest: "a", Name: "[1/2] FROM base", Started: now, Completed: now, Cached: true},
		{Digest: "b", Name: "[2/2] RUN make"},
	}}))
	p.trace(trace(&controlapi.StatusResponse{Vertexes: []*controlapi.Vertex{{Digest: "b", Name: "[2/2] RUN make", Started: now}}}))
	p.trace(trace(&controlapi.StatusResponse{Logs: []*controlapi.VertexLog{{Vertex: "b", Msg: []byte("compiling\nlinking\n")}}}))
	p.trace(trace(&controlapi.StatusResponse{Vertexes: []*controlapi.Vertex{{Digest: "b", Name: "[2/2] RUN make", Started: now, Completed: now, Error: "exit code 2"}}}))
	p.trace(trace(&controlapi.StatusResponse{Vertexes: []*controlapi.Vertex{{Digest: "b", Name: "[2/2] RUN make", Started: now, Completed: now, Error: "exit code 2"}}}))
	want := "#1 [1/2] FROM base\n#1 CACHED\n#2 [2/2] RUN make\n#2 compiling\n#2 linking\n#2 ERROR: exit code 2\n"
	if got := log.String(); got != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}
}
