package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// seccompProfile is Docker's seccomp profile format: the OCI section plus an
// architecture map and per-rule conditions on capabilities, architecture and
// kernel version, resolved per container when the spec is built.
type seccompProfile struct {
	specs.LinuxSeccomp
	ArchMap []struct {
		Arch      specs.Arch   `json:"architecture"`
		SubArches []specs.Arch `json:"subArchitectures"`
	} `json:"archMap,omitempty"`
	Syscalls []seccompRule `json:"syscalls"`
}

type seccompRule struct {
	specs.LinuxSyscall
	Name     string         `json:"name,omitempty"`
	Comment  string         `json:"comment,omitempty"`
	Includes *seccompFilter `json:"includes,omitempty"`
	Excludes *seccompFilter `json:"excludes,omitempty"`
}

type seccompFilter struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"` // "<major>.<minor>"
}

// libseccompArch maps GOARCH to the names the profile's arches filters use
// (libseccomp's) and to the OCI architecture of the archMap.
var libseccompArch = map[string]struct {
	name string
	arch specs.Arch
}{
	"386": {"x86", specs.ArchX86}, "amd64": {"amd64", specs.ArchX86_64},
	"arm": {"arm", specs.ArchARM}, "arm64": {"arm64", specs.ArchAARCH64},
	"loong64": {"loongarch64", specs.ArchLOONGARCH64}, "mips64": {"mips64", specs.ArchMIPS64},
	"mips64le": {"mipsel64", specs.ArchMIPSEL64}, "ppc64le": {"ppc64le", specs.ArchPPC64LE},
	"riscv64": {"riscv64", specs.ArchRISCV64}, "s390x": {"s390x", specs.ArchS390X},
}

// seccompFromProfile resolves a Docker-format profile for one container:
// the native architecture's entry of archMap (with its sub-architectures),
// and only the rules whose includes hold and whose excludes do not, given
// the container's bounding capabilities and the running kernel. This is
// what makes `--cap-add SYS_ADMIN` also allow mount(2) and friends under
// the default profile, as in Docker.
func seccompFromProfile(data []byte, bounding []string) (*specs.LinuxSeccomp, error) {
	var p seccompProfile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("decoding seccomp profile failed: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return resolveProfile(&p, bounding)
}

// defaultProfile is Docker's default profile, built once per process
// (`run` builds a spec at create, to validate, and again at start) from
// its Go form, which TestDefaultProfileGenerated keeps equal to
// seccomp_default.json decoded.
var defaultProfile = sync.OnceValues(func() (*seccompProfile, error) {
	return newDefaultProfile(), nil
})

// resolveProfile is seccompFromProfile's second half. It does not modify p
// (the default profile is shared).
func resolveProfile(p *seccompProfile, bounding []string) (*specs.LinuxSeccomp, error) {
	if p.DefaultAction == "" && len(p.Syscalls) == 0 {
		return nil, nil // an empty profile means no filter, as in Docker
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return nil, fmt.Errorf("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap': %w", errdefs.ErrInvalidArgument)
	}
	out := p.LinuxSeccomp
	out.Syscalls = nil
	native := libseccompArch[runtime.GOARCH]
	for _, a := range p.ArchMap {
		if a.Arch == native.arch {
			out.Architectures = append(append(out.Architectures, a.Arch), a.SubArches...)
			break
		}
	}
	kernel, err := kernelVersion()
	if err != nil {
		return nil, err
	}
	for _, r := range p.Syscalls {
		if r.Name != "" {
			if len(r.Names) > 0 {
				return nil, fmt.Errorf("both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names': %w", errdefs.ErrInvalidArgument)
			}
			r.Names = []string{r.Name}
		}
		ok, err := r.applies(native.name, bounding, kernel)
		if err != nil {
			return nil, err
		}
		if ok {
			out.Syscalls = append(out.Syscalls, r.LinuxSyscall)
		}
	}
	return &out, nil
}

func (r *seccompRule) applies(arch string, bounding []string, kernel [2]int) (bool, error) {
	if ex := r.Excludes; ex != nil {
		if slices.Contains(ex.Arches, arch) {
			return false, nil
		}
		for _, c := range ex.Caps {
			if slices.Contains(bounding, c) {
				return false, nil
			}
		}
		if ex.MinKernel != "" {
			min, err := parseKernel(ex.MinKernel)
			if err != nil {
				return false, err
			}
			if !kernelLess(kernel, min) {
				return false, nil
			}
		}
	}
	if in := r.Includes; in != nil {
		if len(in.Arches) > 0 && !slices.Contains(in.Arches, arch) {
			return false, nil
		}
		for _, c := range in.Caps {
			if !slices.Contains(bounding, c) {
				return false, nil
			}
		}
		if in.MinKernel != "" {
			min, err := parseKernel(in.MinKernel)
			if err != nil {
				return false, err
			}
			if kernelLess(kernel, min) {
				return false, nil
			}
		}
	}
	return true, nil
}

func parseKernel(s string) ([2]int, error) {
	var v [2]int
	if _, err := fmt.Sscanf(s, "%d.%d", &v[0], &v[1]); err != nil {
		return v, fmt.Errorf("invalid kernel version %q in seccomp profile, expected \"<kernel>.<major>\": %w", s, errdefs.ErrInvalidArgument)
	}
	return v, nil
}

func kernelLess(a, b [2]int) bool { return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1]) }

// kernelVersion is the running kernel's "major.minor".
func kernelVersion() ([2]int, error) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return [2]int{}, fmt.Errorf("uname: %w", err)
	}
	return parseKernel(unix.ByteSliceToString(uts.Release[:]))
}

// containerSeccomp picks the container's filter: none when privileged or
// `seccomp=unconfined`, the given profile (inline JSON, or a file), else
// Docker's default, each resolved against the container's capabilities.
func containerSeccomp(privileged bool, opt string, bounding []string) (*specs.LinuxSeccomp, error) {
	if privileged || opt == "unconfined" {
		return nil, nil
	}
	var data []byte
	switch {
	case opt == "" || opt == "builtin":
		p, err := defaultProfile()
		if err != nil {
			return nil, err
		}
		return resolveProfile(p, bounding)
	case strings.HasPrefix(strings.TrimSpace(opt), "{"):
		// The CLI inlines the file's content at create time, as Docker's
		// does, so the container does not depend on the file later.
		data = []byte(opt)
	default:
		b, err := os.ReadFile(opt)
		if err != nil {
			return nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", opt, err)
		}
		data = b
	}
	return seccompFromProfile(data, bounding)
}
