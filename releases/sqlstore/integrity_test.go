package sqlstore_test

import (
	"path/filepath"
	"testing"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/metadatatest"
)

func TestIntegrity(t *testing.T) {
	metadatatest.RunIntegrity(t, func(t *testing.T) releases.Metadata {
		return openFile(t, filepath.Join(t.TempDir(), "dml.db"))
	})
}
