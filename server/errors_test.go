package server

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/swarmhook/swarmhook/store"
	"github.com/swarmhook/swarmhook/updater"
)

// TestStatus: the one place that picks a status maps each kind of error
// the handlers pass up, however deeply wrapped.
func TestStatus(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"service named in the config but not in Swarm", fmt.Errorf("tags of shop_api: %w", &updater.NoServiceError{Service: "shop_api"}), http.StatusNotFound},
		{"job not found", fmt.Errorf("get job 7: %w", store.ErrNotFound), http.StatusNotFound},
		{"data_dir full", fmt.Errorf("record job: %w", store.ErrFull), http.StatusServiceUnavailable},
		{"anything else", errors.New("boom"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status(tt.err); got != tt.want {
				t.Errorf("status(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}
