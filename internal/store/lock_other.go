//go:build !unix

package store

import "os"

// lockDir does not lock on systems without flock: only one process may use
// a data directory, and nothing stops a second one.
func lockDir(string) (*os.File, error) { return nil, nil }
