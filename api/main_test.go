package api_test

import (
	"os"
	"testing"

	"github.com/dmlproject/dml/api"
	"github.com/gin-gonic/gin"
)

// TestMain runs gin as the server does: its mode is process-wide, so the
// program (cmd/dml, here the test binary) sets it once.
func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	os.Exit(m.Run())
}

// newAPI builds the HTTP layer, failing the test if it cannot.
func newAPI(t testing.TB, cfg api.Config) *api.Server {
	t.Helper()
	s, err := api.New(cfg)
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	return s
}
