//go:build tools

// This file pins modules that posture's later check families build on, so
// that go.mod and go.sum record them before the code that links them lands:
// nuclei (as a library) drives the web-vulnerability templates of the web
// family. The build tag keeps it out of every binary and test until then.
package posture

import (
	_ "github.com/projectdiscovery/nuclei/v3/lib"
)
