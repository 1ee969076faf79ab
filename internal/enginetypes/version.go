package enginetypes

import (
	"slices"
	"strings"
)

// VersionLess compares two dotted versions numerically, up to three
// parts ("1.44" as API versions are spelled, "1.2.1" as the runtime spec
// spells them); a missing part is 0 and a suffix such as "-rc.1" or
// "+dev" is ignored.
func VersionLess(a, b string) bool {
	pa, pb := versionParts(a), versionParts(b)
	return slices.Compare(pa[:], pb[:]) < 0
}

func versionParts(v string) [3]int {
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	var out [3]int
	for i, f := range strings.SplitN(v, ".", 3) {
		n := 0
		for _, c := range f {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int(c-'0')
		}
		out[i] = n
	}
	return out
}
