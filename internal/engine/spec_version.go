package engine

import (
	"path"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/enginetypes"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The ociVersion a config.json declares is a promise about which fields
// it may use, and some runtimes hold the engine to it: crun before 1.14
// refuses any version but 1.0.x and 1.1.x ("unknown version specified"),
// and Debian 12 ships crun 1.8. Writing specs.Version — the version of the
// runtime-spec module this engine was built with, 1.3.0 — would refuse
// every container on such a runtime although the config uses nothing
// newer than 1.1. So the engine declares the oldest version that defines
// every field and value the config uses (as a conformance tool would
// check it), and a runtime that knows that version runs the container.
// A config that does need a newer version says so and still fails, with
// the same message, on a runtime that cannot honour it: refusing is
// right there.
const (
	ociVersionBase = "1.0.2" // seccomp flags, SCMP_ACT_LOG, personality, create-* hooks
	ociVersion1_1  = "1.1.0"
	ociVersion1_2  = "1.2.0"
	ociVersion1_2a = "1.2.1"
	ociVersion1_3  = "1.3.0"
)

// recursiveMountOptions are the mount_setattr-based options of runtime-spec
// 1.1 ("rro", "rnosuid", ...): a runtime older than the version may pass
// them to mount(2) or ignore them, and a read-only bind that silently
// stays writable underneath is what the declared version guards against.
var recursiveMountOptions = []string{
	"rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec",
	"rnodiratime", "rdiratime", "rrelatime", "rnorelatime", "rnoatime", "ratime",
	"rstrictatime", "rnostrictatime", "rnosymfollow", "rsymfollow",
}

// ociVersion returns the oldest runtime-spec version that defines all of
// s's content. It looks at what a version added, not at what it changed in
// prose, and it never returns more than specs.Version (a field this
// module does not know cannot be in s).
func ociVersion(s *specs.Spec) string {
	var f versionFloor
	need := f.need
	if s.Domainname != "" {
		need(ociVersion1_1)
	}
	if s.VM != nil && s.VM.HwConfig != nil {
		need(ociVersion1_3)
	}
	if s.FreeBSD != nil {
		need(ociVersion1_3)
	}
	if p := s.Process; p != nil {
		if p.Scheduler != nil || p.IOPriority != nil {
			need(ociVersion1_1)
		}
		if p.ExecCPUAffinity != nil {
			need(ociVersion1_2a)
		}
	}
	for _, m := range s.Mounts {
		need(mountVersion(m))
	}
	if l := s.Linux; l != nil {
		need(linuxVersion(l))
	}
	if enginetypes.VersionLess(specs.Version, f.get()) {
		return specs.Version
	}
	return f.get()
}

// versionFloor is the oldest version seen to be needed so far.
type versionFloor struct{ v string }

func (f *versionFloor) need(min string) {
	if enginetypes.VersionLess(f.get(), min) {
		f.v = min
	}
}

func (f *versionFloor) get() string {
	if f.v == "" {
		return ociVersionBase
	}
	return f.v
}

func mountVersion(m specs.Mount) string {
	var f versionFloor
	if len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
		f.need(ociVersion1_1)
	}
	for _, o := range m.Options {
		if slices.Contains(recursiveMountOptions, o) {
			f.need(ociVersion1_1)
		}
		if o == "idmap" || o == "ridmap" {
			f.need(ociVersion1_2)
		}
	}
	// 1.2 allows a relative destination (taken from the container's cwd).
	if m.Destination != "" && !path.IsAbs(m.Destination) {
		f.need(ociVersion1_2)
	}
	return f.get()
}

func linuxVersion(l *specs.Linux) string {
	var f versionFloor
	need := f.need
	if l.NetDevices != nil || l.MemoryPolicy != nil {
		need(ociVersion1_3)
	}
	// (1.1's enableCMT and enableMBM became 1.3's enableMonitoring.)
	if r := l.IntelRdt; r != nil && (len(r.Schemata) > 0 || r.EnableMonitoring) {
		need(ociVersion1_3)
	}
	if len(l.TimeOffsets) > 0 {
		need(ociVersion1_1)
	}
	for _, ns := range l.Namespaces {
		if ns.Type == specs.TimeNamespace {
			need(ociVersion1_1)
		}
	}
	if r := l.Resources; r != nil {
		if len(r.Unified) > 0 {
			need(ociVersion1_1)
		}
		if c := r.CPU; c != nil && (c.Idle != nil || c.Burst != nil) {
			need(ociVersion1_1)
		}
		if m := r.Memory; m != nil && m.CheckBeforeUpdate != nil {
			need(ociVersion1_1)
		}
		for _, h := range r.HugepageLimits {
			// The rsvd hugetlb controller files ("rsvd.2MB").
			if strings.HasPrefix(h.Pagesize, "rsvd.") {
				need(ociVersion1_1)
			}
		}
	}
	if sc := l.Seccomp; sc != nil {
		need(seccompVersion(sc))
	}
	return f.get()
}

func seccompVersion(sc *specs.LinuxSeccomp) string {
	var f versionFloor
	need := f.need
	// errnoRet, defaultErrnoRet and the notify listener are 1.1: an older
	// runtime would answer every refused syscall with EPERM, where the
	// default profile answers ENOSYS so that programs fall back (clone3).
	if sc.DefaultErrnoRet != nil || sc.ListenerPath != "" || sc.ListenerMetadata != "" {
		need(ociVersion1_1)
	}
	if slices.Contains(sc.Flags, specs.LinuxSeccompFlagWaitKillableRecv) {
		need(ociVersion1_1)
	}
	for _, a := range sc.Architectures {
		switch a {
		case specs.ArchRISCV64:
			need(ociVersion1_1)
		case specs.ArchLOONGARCH64, specs.ArchM68K, specs.ArchSH, specs.ArchSHEB:
			need(ociVersion1_2a)
		}
	}
	need(seccompActionVersion(sc.DefaultAction))
	for _, s := range sc.Syscalls {
		if s.ErrnoRet != nil {
			need(ociVersion1_1)
		}
		need(seccompActionVersion(s.Action))
	}
	return f.get()
}

func seccompActionVersion(a specs.LinuxSeccompAction) string {
	switch a {
	case specs.ActKillProcess, specs.ActKillThread, specs.ActNotify:
		return ociVersion1_1
	}
	return ociVersionBase
}
