package main

import (
	"context"
	"os"

	"github.com/nhsx/posture/scanner/store"
)

// openExisting opens a database that must already exist: reading commands
// must not create an empty one on a mistyped path.
func openExisting(ctx context.Context, path string) (*store.Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, usagef("database %s: %v", path, err)
	}
	return store.Open(ctx, path)
}
