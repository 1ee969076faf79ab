// Package depcheck enforces the import direction written in DESIGN.md:
// cmd → {cli, api, cri} → {client | engine} → enginetypes → {build,
// registry, image, network, volume, runtime} → {content, snapshot, archive, rootfs, cgroups}
// → linux → errdefs. A package may import only packages of a lower layer.
package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/berth-dev/berth/"

// layer returns the layer of a berth package (higher imports lower), or -1
// for packages that are free to import anything (test helpers).
func layer(pkg string) int {
	p := strings.TrimPrefix(pkg, module)
	first := func(prefixes ...string) bool {
		for _, pre := range prefixes {
			if p == pre || strings.HasPrefix(p, pre+"/") {
				return true
			}
		}
		return false
	}
	switch {
	case first("internal/testutil", "internal/snapshot/snapshottest", "test", "bench"):
		return -1
	case first("internal/errdefs"):
		return 0
	case first("internal/linux", "internal/atomicfile", "internal/diskhint", "internal/reference", "internal/timing", "internal/liveness", "internal/mountinfo"):
		return 1
	case first("internal/content", "internal/snapshot", "internal/archive", "internal/rootfs", "internal/cgroups", "internal/specwire"):
		return 2
	case first("internal/registry", "internal/image", "internal/imagearchive", "internal/network", "internal/volume", "internal/runtime", "internal/monitor"):
		return 3
	// build drives the image store (layer 3) like the engine does.
	case first("internal/enginetypes", "internal/build"):
		return 4
	case first("internal/client", "internal/engine"):
		return 5
	case first("internal/cli", "internal/api", "internal/cri"):
		return 6
	case first("cmd"):
		return 7
	}
	return -2 // unknown: the test asks for a decision
}

func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := f[0]
		from := layer(pkg)
		if from == -2 {
			t.Errorf("%s: no layer assigned; add it to depcheck and DESIGN.md", pkg)
			continue
		}
		if from == -1 {
			continue
		}
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			to := layer(imp)
			// Sub-packages of one layer-1 tree (internal/linux/...) are
			// independent wrappers and must not import each other either,
			// except the tree's root package.
			if to >= from && !(to == 1 && from == 1 && imp == module+"internal/linux") {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must point down", pkg, from, imp, to)
			}
		}
	}
}
