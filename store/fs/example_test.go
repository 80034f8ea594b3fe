package fs_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/dmlproject/dml/store"
	"github.com/dmlproject/dml/store/fs"
)

func Example() {
	dir, err := os.MkdirTemp("", "dml-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	backend, err := fs.New(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()

	blobs := store.New(backend)
	blob, err := blobs.Ingest(context.Background(), strings.NewReader("hello\n"), store.IngestOptions{Size: -1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(blob.Digest, blob.Size, blob.Created)
	// Output: sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 6 true
}
