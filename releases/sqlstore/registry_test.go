package sqlstore_test

import (
	"path/filepath"
	"testing"

	"github.com/dmlproject/dml/releases"
	"github.com/dmlproject/dml/releases/metadatatest"
)

func TestRegistry(t *testing.T) {
	metadatatest.RunRegistry(t, func(t *testing.T) releases.Metadata {
		return openFile(t, filepath.Join(t.TempDir(), "dml.db"))
	})
}
