//go:build !unix

package secrets

// lockFile is a no-op where flock is not available: writers in one process are still
// serialised by Store.mu.
func lockFile(string) (func(), error) { return func() {}, nil }
