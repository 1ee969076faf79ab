package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/specwire"
)

// bundleSpec is a bundle's config.json, read and decoded once, up front.
// specwire.DecodeJSON does that without reflection in tens of
// microseconds, where encoding/json spends over a millisecond building its
// decoders in each fresh runtime process; so there is no partial "quick"
// decode and no second pass for the cgroup's limits.
type bundleSpec struct {
	dir  string
	raw  []byte
	spec *specs.Spec
}

func readBundle(dir string) (*bundleSpec, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(abs, "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("bundle %s has no config.json: %w", abs, errdefs.ErrNotFound)
		}
		return nil, err
	}
	s, err := specwire.DecodeJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s/config.json: %w", abs, err)
	}
	if s.Root == nil || s.Root.Path == "" {
		return nil, fmt.Errorf("config.json: root.path is required: %w", errdefs.ErrInvalidArgument)
	}
	if s.Process == nil {
		return nil, fmt.Errorf("config.json: process is required: %w", errdefs.ErrInvalidArgument)
	}
	if len(s.Process.Args) == 0 {
		return nil, fmt.Errorf("config.json: process.args must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	return &bundleSpec{dir: abs, raw: data, spec: s}, nil
}

func (b *bundleSpec) terminal() bool { return b.spec.Process.Terminal }

// rootfs is the absolute, symlink-free path of the root filesystem.
func (b *bundleSpec) rootfs() (string, error) {
	p := b.spec.Root.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(b.dir, p)
	}
	p, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	return p, nil
}

// resources is what the cgroup needs: the limits, plus rules for the
// devices the runtime creates.
func (b *bundleSpec) resources() *specs.LinuxResources {
	return withDefaultDevices(b.spec.Linux)
}

// tightPids reports a pids limit below 2: a thread that forks the init
// from inside the cgroup and the init would not both fit for that instant.
func (b *bundleSpec) tightPids() bool {
	r := b.spec.Linux.Resources
	if r == nil || r.Pids == nil || r.Pids.Limit == nil {
		return false
	}
	l := *r.Pids.Limit
	return l > 0 && l < 2
}

// namespacePlan is how the init gets each of its namespaces.
type namespacePlan struct {
	clone          uintptr // created by clone(2)
	unshareInChild uintptr // created by the nsenter entry point, after joins
	join           map[specs.LinuxNamespaceType]string
	uidMaps        []syscall.SysProcIDMap
	gidMaps        []syscall.SysProcIDMap

	userNS, cgroupNS, timeNS, newMount, newUTS bool
	// late are new network, IPC and UTS namespaces that the init enters
	// after it starts instead of at clone time; lateByParent says a thread
	// of the parent makes them meanwhile (the init joins them).
	late         uintptr
	lateByParent bool
}

func planNamespaces(l *specs.Linux) (*namespacePlan, error) {
	flags, join, err := namespaceSetup(l.Namespaces)
	if err != nil {
		return nil, err
	}
	p := &namespacePlan{join: join}
	// The cgroup and time namespaces are unshared by the init itself: a
	// cgroup namespace is rooted where the process is when it is created, so
	// it must come after the move into the container's cgroup; and a time
	// namespace needs its offsets written before anything runs in it.
	p.cgroupNS = flags&unix.CLONE_NEWCGROUP != 0
	p.timeNS = flags&unix.CLONE_NEWTIME != 0
	flags &^= unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME
	p.userNS = flags&unix.CLONE_NEWUSER != 0 || join[specs.UserNamespace] != ""
	p.newMount = flags&unix.CLONE_NEWNS != 0
	p.newUTS = flags&unix.CLONE_NEWUTS != 0 || join[specs.UTSNamespace] != ""
	p.clone = flags
	if join[specs.UserNamespace] != "" {
		// Namespaces owned by a joined user namespace must be created from
		// inside it: the child's nsenter entry point does that after joining.
		if flags&unix.CLONE_NEWPID != 0 {
			return nil, fmt.Errorf("joining a user namespace by path while creating a new PID namespace is not supported: %w", errdefs.ErrNotSupported)
		}
		p.unshareInChild = flags & (unix.CLONE_NEWNS | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS)
		p.clone &^= p.unshareInChild
	}
	if flags&unix.CLONE_NEWUSER != 0 {
		if len(l.UIDMappings) == 0 || len(l.GIDMappings) == 0 {
			return nil, fmt.Errorf("a new user namespace needs uidMappings and gidMappings: %w", errdefs.ErrInvalidArgument)
		}
		p.uidMaps, p.gidMaps = idMaps(l.UIDMappings), idMaps(l.GIDMappings)
	}
	// Building network and IPC namespaces takes about a millisecond; it
	// is taken off the clone (which the whole start waits for) and done in
	// parallel with the init's start-up instead: by a thread of ours that
	// the init joins, or, when a user namespace must own them (joined by
	// path), by the init itself. A new user namespace is made at clone
	// time, so they stay with it there.
	if flags&unix.CLONE_NEWUSER == 0 {
		p.late = p.clone & (unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS)
		p.clone &^= p.late
		p.lateByParent = !p.userNS
	}
	return p, nil
}
