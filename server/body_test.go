package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestAPIBodies: a JSON body is one value, and one over the API's limit
// answers 413, whether its length was declared or not.
func TestAPIBodies(t *testing.T) {
	ls := startLive(t, Limits{}, Deps{})
	huge := `{"replicas":1}` + strings.Repeat(" ", maxAPIBody)
	for _, tt := range []struct {
		name     string
		body     io.Reader
		wantCode int
		want     string
	}{
		{"one value", strings.NewReader(`{"replicas":1}`), http.StatusAccepted, `"job"`},
		{"white space after", strings.NewReader("{\"replicas\":1} \n"), http.StatusAccepted, `"job"`},
		{"a second value", strings.NewReader(`{"replicas":1}{"replicas":999}`), http.StatusBadRequest, "data after the JSON value, which ends at byte 14"},
		{"a stray brace", strings.NewReader(`{"replicas":1}}`), http.StatusBadRequest, "data after the JSON value"},
		{"declared over the limit", strings.NewReader(huge), http.StatusRequestEntityTooLarge, "body of 65550 bytes declared, the limit is 65536"},
		// io.MultiReader hides the length: the body goes chunked.
		{"undeclared over the limit", io.MultiReader(strings.NewReader(huge)), http.StatusRequestEntityTooLarge, "body is over the limit of 65536 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "http://"+ls.addr+"/api/services/shop_api/scale", tt.body)
			req.Header.Set("Authorization", "Bearer admin-token-0123456789")
			resp, err := failsafeClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(body), tt.want) {
				t.Errorf("%d %s, want %d saying %q", resp.StatusCode, body, tt.wantCode, tt.want)
			}
		})
	}
}
