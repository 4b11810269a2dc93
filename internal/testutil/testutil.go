// Package testutil holds helpers shared by the project's tests: locating the shared recordings,
// and failing instead of skipping under CI. Polling for a condition is testify's
// require.Eventually.
package testutil

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// RepoRoot returns the repository's root directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testutil: cannot locate the source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// SharedDir returns the project's shared/ directory (BFBRIDGE_SHARED, or ../shared beside the
// repository). When it is missing the test is skipped, or fails when CI is set.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("BFBRIDGE_SHARED")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared")
	}
	if _, err := os.Stat(filepath.Join(dir, "recordings")); err != nil {
		Require(t, "the shared recordings directory "+dir)
	}
	return dir
}

// Require skips the test for want of what, or fails it when CI is set: CI must run every test.
func Require(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set and %s is missing", what)
	}
	t.Skipf("%s is missing", what)
}
