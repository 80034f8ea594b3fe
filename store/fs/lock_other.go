//go:build !unix

package fs

import (
	"errors"
	"os"
)

func lockDir(path string) (*os.File, error) {
	return nil, errors.New("the fs backend needs flock(2), which this platform lacks")
}

func unlockDir(f *os.File) error { return f.Close() }
