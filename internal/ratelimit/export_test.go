package ratelimit

// WindowKey is the Redis key of l's window w of k, for the package's
// tests that read what the scripts stored.
func WindowKey(l *Limiter, k Key, w Window) string { return l.windowKey(k, w) }

// AnnounceStale is how long an announced key is shown without a new
// announcement.
const AnnounceStale = announceStale
