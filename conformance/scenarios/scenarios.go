// Package scenarios holds the conformance scenarios (*.scenario, documented in README.md),
// embedded so that the bridge binary carries them for "bridge conformance".
package scenarios

import "embed"

// FS holds every scenario file.
//
//go:embed *.scenario
var FS embed.FS
