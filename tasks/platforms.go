package tasks

import (
	"slices"
	"strings"
)

// platforms is bundle.social's platform enum from its OpenAPI document. The
// live API adds values from time to time: add a new one here (one line) and
// both producers and workers accept it after a rebuild.
var platforms = []string{
	"TIKTOK",
	"YOUTUBE",
	"INSTAGRAM",
	"FACEBOOK",
	"TWITTER",
	"THREADS",
	"LINKEDIN",
	"PINTEREST",
	"REDDIT",
	"MASTODON",
	"DISCORD",
	"SLACK",
	"BLUESKY",
	"GOOGLE_BUSINESS",
}

// Platforms returns the bundle.social platforms a task may name.
func Platforms() []string { return slices.Clone(platforms) }

// IsPlatform reports whether name is a known bundle.social platform. Names
// are upper case, as the API spells them.
func IsPlatform(name string) bool { return slices.Contains(platforms, name) }

// platformList is the platforms as one comma-separated string, for messages.
func platformList() string { return strings.Join(platforms, ", ") }
