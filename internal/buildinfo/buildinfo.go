package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version and revision are set by the linker; see the package doc.
var version, revision string

// Info is one build's identity.
type Info struct {
	Version   string // e.g. v1.2.3, or devel
	Revision  string // VCS revision, "unknown" when Go recorded none
	Modified  bool   // the working tree had changes at build time
	GoVersion string
}

// Read returns this binary's Info.
func Read() Info {
	i := Info{Version: version, Revision: revision, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if i.Revision == "" {
					i.Revision = s.Value
				}
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	if i.Revision == "" {
		i.Revision = "unknown"
	}
	return i
}

// String is the line `-version` prints, e.g.
// "worker v1.2.3 (revision 4205f6b, go1.26.0)".
func (i Info) String() string {
	rev := i.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if i.Modified {
		rev += "+modified"
	}
	return fmt.Sprintf("%s (revision %s, %s)", i.Version, rev, i.GoVersion)
}
