package main

import "github.com/nhsx/posture/reports/storesource"

// storeSource is the store as reports read it (shared with the dashboard).
type storeSource = storesource.Source
