// Package atomicfile writes a file that a reader sees whole or not at
// all: the bytes go to a temporary file in the destination's directory
// (so that the last step is a rename or a link within one file system),
// which is synced and only then given the destination's name. It is the
// one file writer of the program: the CLI's documents and state files and
// the server's key files all go through it.
package atomicfile
