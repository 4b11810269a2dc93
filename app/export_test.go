package app

import "time"

// SetReadyCacheFor shortens how long /readyz reuses its outside checks, so that a test sees a
// contact center come back without waiting readyCacheFor.
func SetReadyCacheFor(a *App, d time.Duration) { a.ready.cacheFor = d }
