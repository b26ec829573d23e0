package main

import (
	"fmt"

	"github.com/nhsx/posture/checks/check"
	"github.com/nhsx/posture/checks/webcheck"
)

// hstsPreloadUsage is --hsts-preload's help (scan and reeval).
const hstsPreloadUsage = "a newer copy of Chromium's HSTS preload list for web.hsts.preload, in the embedded list's format " +
	"(a header line with the list's date YYYY-MM-DD, then host<TAB>1|0 a line; gzip or plain); default: the list of " +
	webcheck.EmbeddedPreloadDate + " built in"

// loadHSTSPreload reads --hsts-preload ("": nil). A file that cannot be
// read or does not parse is bad input: exit 2, with file:line.
func loadHSTSPreload(file string) (*webcheck.PreloadList, error) {
	if file == "" {
		return nil, nil
	}
	l, err := webcheck.LoadPreload(file)
	if err != nil {
		return nil, &usageError{fmt.Errorf("--hsts-preload: %w", err)}
	}
	return l, nil
}

// hstsPreloadEnv is a scan's base environment carrying the list for
// Collect (nil without one).
func hstsPreloadEnv(l *webcheck.PreloadList) *check.Env {
	if l == nil {
		return nil
	}
	return &check.Env{Lists: map[string]check.List{webcheck.PreloadListName: l}}
}

// withHSTSPreload puts the list in the web policy section, which
// Evaluate judges web.hsts.preload against (reeval).
func withHSTSPreload(pol *check.Policy, l *webcheck.PreloadList) *check.Policy {
	if l == nil {
		return pol
	}
	v := webcheck.Settings.Get(pol)
	v.Preload = l
	return webcheck.Settings.Set(pol, v)
}
