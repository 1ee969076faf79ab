package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/volume"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// mountPoint is one user mount of a container, from -v, --mount, --tmpfs
// or the image's VOLUMEs, in one shape whatever flag it came from.
type mountPoint struct {
	Type        mount.Type
	Source      string // host path (bind) or volume name (volume)
	Destination string
	RW          bool
	Propagation mount.Propagation // binds only
	NonRecurse  bool              // bind-nonrecursive
	Options     []string          // tmpfs options
	NoCopy      bool              // volume: do not fill from the image
	Anonymous   bool              // volume created for this container
	CreateSrc   bool              // -v host path: create when missing, as Docker does
	Labels      map[string]string // volume labels (--mount volume-label)
	DriverOpts  map[string]string // volume options (--mount volume-opt)
	// ReadOnlyNonRecursive and ReadOnlyForceRecursive are a bind's
	// BindOptions: read-only at the top mount only (Docker before API
	// 1.44), or recursively read-only or no container at all.
	ReadOnlyNonRecursive   bool
	ReadOnlyForceRecursive bool
	// RecursiveReadOnly is what start does: a read-only bind or volume
	// made read-only with all its submounts, as Create settled it
	// (Container.ReadOnlyRecursive) or the bind forces it.
	RecursiveReadOnly bool
}

// anonymousVolumeName names the anonymous volume a container gets at dest.
// It is derived from the container ID and the path rather than random, so
// the container record alone says which volumes are its own: `rm -v`, `volume
// rm` (in use?) and a restart all find them without a second record that a
// kill -9 could leave out of step.
func anonymousVolumeName(containerID, dest string) string {
	sum := sha256.Sum256([]byte(containerID + "\x00" + dest))
	return hex.EncodeToString(sum[:])
}

// containerMounts collects a container's mounts in Docker's order of
// precedence: --mount, then -v, then --tmpfs, then the image's VOLUMEs for
// paths nothing else covers. Two user mounts on one path are an error.
func containerMounts(c *Container) ([]mountPoint, error) {
	var out []mountPoint
	seen := map[string]bool{}
	add := func(m mountPoint) error {
		if seen[m.Destination] {
			return fmt.Errorf("duplicate mount point: %s: %w", m.Destination, errdefs.ErrInvalidArgument)
		}
		seen[m.Destination] = true
		if m.Type == mount.TypeVolume && m.Source == "" {
			m.Source, m.Anonymous = anonymousVolumeName(c.ID, m.Destination), true
		}
		if !m.RW && m.Type != mount.TypeTmpfs {
			m.RecursiveReadOnly = m.ReadOnlyForceRecursive || (c.ReadOnlyRecursive && !m.ReadOnlyNonRecursive)
		}
		out = append(out, m)
		return nil
	}
	for _, m := range c.HostConfig.Mounts {
		mp, err := parseMountSpec(m)
		if err != nil {
			return nil, err
		}
		if err := add(mp); err != nil {
			return nil, err
		}
	}
	for _, b := range c.HostConfig.Binds {
		mp, err := parseBind(b)
		if err != nil {
			return nil, err
		}
		if err := add(mp); err != nil {
			return nil, err
		}
	}
	tmpfs := make([]string, 0, len(c.HostConfig.Tmpfs))
	for dst := range c.HostConfig.Tmpfs {
		tmpfs = append(tmpfs, dst)
	}
	sort.Strings(tmpfs)
	for _, dst := range tmpfs {
		mp, err := parseTmpfs(dst, c.HostConfig.Tmpfs[dst])
		if err != nil {
			return nil, err
		}
		if err := add(mp); err != nil {
			return nil, err
		}
	}
	vols := make([]string, 0, len(c.Config.Volumes))
	for dst := range c.Config.Volumes {
		vols = append(vols, dst)
	}
	sort.Strings(vols)
	for _, dst := range vols {
		dst = path.Clean(dst)
		if seen[dst] || !path.IsAbs(dst) {
			continue
		}
		if err := add(mountPoint{Type: mount.TypeVolume, Destination: dst, RW: true}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func checkDestination(dst string) (string, error) {
	if dst == "" {
		return "", fmt.Errorf("invalid mount config: target must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	if !path.IsAbs(dst) {
		return "", fmt.Errorf("invalid mount path: '%s' mount path must be absolute: %w", dst, errdefs.ErrInvalidArgument)
	}
	dst = path.Clean(dst)
	if dst == "/" {
		return "", fmt.Errorf("invalid specification: destination can't be '/': %w", errdefs.ErrInvalidArgument)
	}
	return dst, nil
}

// parseBind reads -v's three forms: /ctr (anonymous volume), name:/ctr[:mode]
// (named volume) and /host:/ctr[:mode] (bind).
func parseBind(spec string) (mountPoint, error) {
	parts := strings.Split(spec, ":")
	var src, dst, mode string
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		src, dst = parts[0], parts[1]
	case 3:
		src, dst, mode = parts[0], parts[1], parts[2]
	default:
		return mountPoint{}, fmt.Errorf("invalid volume specification: '%s': %w", spec, errdefs.ErrInvalidArgument)
	}
	dst, err := checkDestination(dst)
	if err != nil {
		return mountPoint{}, fmt.Errorf("invalid volume specification: '%s': %w", spec, err)
	}
	m := mountPoint{Type: mount.TypeVolume, Destination: dst, RW: true}
	switch {
	case src == "":
	case strings.HasPrefix(src, "/"):
		m.Type, m.Source, m.CreateSrc = mount.TypeBind, path.Clean(src), true
		m.Propagation = mount.PropagationRPrivate
	default:
		if err := volume.ValidateName(src); err != nil {
			return mountPoint{}, err
		}
		m.Source = src
	}
	for _, o := range strings.Split(mode, ",") {
		switch o {
		case "":
		case "ro":
			m.RW = false
		case "rw":
			m.RW = true
		case "z", "Z", "consistent", "cached", "delegated":
			// SELinux relabelling (no SELinux here) and Docker Desktop's
			// consistency hints: accepted, nothing to do.
		case "nocopy":
			if m.Type != mount.TypeVolume {
				return mountPoint{}, fmt.Errorf("invalid mode: %s: nocopy applies to volumes only: %w", mode, errdefs.ErrInvalidArgument)
			}
			m.NoCopy = true
		case "shared", "rshared", "slave", "rslave", "private", "rprivate":
			if m.Type != mount.TypeBind {
				return mountPoint{}, fmt.Errorf("invalid mode: %s: propagation applies to bind mounts only: %w", mode, errdefs.ErrInvalidArgument)
			}
			m.Propagation = mount.Propagation(o)
		default:
			return mountPoint{}, fmt.Errorf("invalid mode: %s: %w", mode, errdefs.ErrInvalidArgument)
		}
	}
	return m, nil
}

// parseMountSpec validates a --mount (already split into fields by the CLI).
func parseMountSpec(m mount.Mount) (mountPoint, error) {
	dst, err := checkDestination(m.Target)
	if err != nil {
		return mountPoint{}, err
	}
	mp := mountPoint{Type: m.Type, Source: m.Source, Destination: dst, RW: !m.ReadOnly}
	switch m.Type {
	case mount.TypeBind:
		if m.Source == "" {
			return mountPoint{}, fmt.Errorf("invalid mount config for type \"bind\": field Source must not be empty: %w", errdefs.ErrInvalidArgument)
		}
		if !path.IsAbs(m.Source) {
			return mountPoint{}, fmt.Errorf("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute: %w", m.Source, errdefs.ErrInvalidArgument)
		}
		mp.Source, mp.Propagation = path.Clean(m.Source), mount.PropagationRPrivate
		if o := m.BindOptions; o != nil {
			if o.Propagation != "" {
				mp.Propagation = o.Propagation
			}
			mp.NonRecurse = o.NonRecursive
			mp.CreateSrc = o.CreateMountpoint
			mp.ReadOnlyNonRecursive, mp.ReadOnlyForceRecursive = o.ReadOnlyNonRecursive, o.ReadOnlyForceRecursive
			// dockerd's checks (and wording), made at create rather than
			// at start so that a bad request leaves no container behind.
			switch {
			case !m.ReadOnly && o.ReadOnlyNonRecursive:
				return mountPoint{}, fmt.Errorf("mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive: %w", errdefs.ErrInvalidArgument)
			case !m.ReadOnly && o.ReadOnlyForceRecursive:
				return mountPoint{}, fmt.Errorf("mount options conflict: !ReadOnly && BindOptions.ReadOnlyForceRecursive: %w", errdefs.ErrInvalidArgument)
			case o.ReadOnlyNonRecursive && o.ReadOnlyForceRecursive:
				return mountPoint{}, fmt.Errorf("mount options conflict: ReadOnlyNonRecursive && BindOptions.ReadOnlyForceRecursive: %w", errdefs.ErrInvalidArgument)
			}
		}
		if m.VolumeOptions != nil || m.TmpfsOptions != nil {
			return mountPoint{}, fmt.Errorf("invalid mount config for type \"bind\": only BindOptions may be given: %w", errdefs.ErrInvalidArgument)
		}
	case mount.TypeVolume:
		if m.Source != "" {
			if err := volume.ValidateName(m.Source); err != nil {
				return mountPoint{}, err
			}
		}
		if o := m.VolumeOptions; o != nil {
			mp.NoCopy, mp.Labels = o.NoCopy, o.Labels
			if o.DriverConfig != nil {
				if o.DriverConfig.Name != "" && o.DriverConfig.Name != volume.DriverLocal {
					return mountPoint{}, fmt.Errorf("volume driver %q: %w", o.DriverConfig.Name, errdefs.ErrNotSupported)
				}
				mp.DriverOpts = o.DriverConfig.Options
			}
			if o.Subpath != "" {
				return mountPoint{}, fmt.Errorf("volume-subpath: %w", errdefs.ErrNotSupported)
			}
		}
		if m.BindOptions != nil || m.TmpfsOptions != nil {
			return mountPoint{}, fmt.Errorf("invalid mount config for type \"volume\": only VolumeOptions may be given: %w", errdefs.ErrInvalidArgument)
		}
	case mount.TypeTmpfs:
		if m.Source != "" {
			return mountPoint{}, fmt.Errorf("invalid mount config for type \"tmpfs\": field Source must not be specified: %w", errdefs.ErrInvalidArgument)
		}
		mp.Options = []string{"nosuid", "nodev", "noexec"}
		if o := m.TmpfsOptions; o != nil {
			if o.SizeBytes < 0 {
				return mountPoint{}, fmt.Errorf("invalid mount config for type \"tmpfs\": invalid tmpfs size %d: %w", o.SizeBytes, errdefs.ErrInvalidArgument)
			}
			if o.SizeBytes > 0 {
				mp.Options = append(mp.Options, "size="+strconv.FormatInt(o.SizeBytes, 10))
			}
			if o.Mode != 0 {
				mp.Options = append(mp.Options, "mode="+strconv.FormatUint(uint64(unixMode(o.Mode)), 8))
			}
			for _, kv := range o.Options {
				mp.Options = append(mp.Options, strings.Join(kv, "="))
			}
		}
	default:
		return mountPoint{}, fmt.Errorf("mount type %q: %w", m.Type, errdefs.ErrNotSupported)
	}
	return mp, nil
}

// parseTmpfs reads --tmpfs /path[:opts]. Docker's defaults are noexec,
// nosuid, nodev; the user's options are added after, so "exec" wins.
func parseTmpfs(dst, opts string) (mountPoint, error) {
	dst, err := checkDestination(dst)
	if err != nil {
		return mountPoint{}, err
	}
	m := mountPoint{Type: mount.TypeTmpfs, Destination: dst, RW: true, Options: []string{"noexec", "nosuid", "nodev"}}
	for _, o := range strings.Split(opts, ",") {
		switch {
		case o == "":
		case o == "ro":
			m.RW = false
		case o == "rw":
			m.RW = true
		default:
			if _, ok := tmpfsOptions[strings.SplitN(o, "=", 2)[0]]; !ok {
				return mountPoint{}, fmt.Errorf("invalid tmpfs option %q: %w", o, errdefs.ErrInvalidArgument)
			}
			m.Options = append(m.Options, o)
		}
	}
	return m, nil
}

// tmpfsOptions are the options --tmpfs accepts: mount flags and tmpfs's own.
var tmpfsOptions = map[string]struct{}{
	"exec": {}, "noexec": {}, "suid": {}, "nosuid": {}, "dev": {}, "nodev": {}, "atime": {},
	"noatime": {}, "relatime": {}, "strictatime": {}, "nodiratime": {}, "diratime": {},
	"size": {}, "mode": {}, "uid": {}, "gid": {}, "nr_inodes": {}, "nr_blocks": {}, "mpol": {},
	"huge": {}, "inode64": {}, "noswap": {}, "sync": {}, "async": {}, "dirsync": {},
}

// unixMode turns a Go FileMode into permission bits with setuid/setgid/sticky.
func unixMode(m os.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// specMount is the OCI mount for m. Volumes are bind mounts of their
// directory, whose path volumePath gives.
func (m mountPoint) specMount(volumePath func(name string) string) specs.Mount {
	switch m.Type {
	case mount.TypeTmpfs:
		opts := append([]string{}, m.Options...)
		if !m.RW {
			opts = append(opts, "ro")
		}
		return specs.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs", Options: opts}
	default:
		src := m.Source
		if m.Type == mount.TypeVolume {
			src = volumePath(m.Source)
		}
		bind := "rbind"
		if m.NonRecurse {
			bind = "bind"
		}
		prop := string(m.Propagation)
		if prop == "" {
			prop = "rprivate"
		}
		opts := []string{bind, prop}
		switch {
		case m.RW:
		case !m.RecursiveReadOnly:
			// The top mount only: submounts keep their own flags.
			opts = append(opts, "ro")
		default:
			// runc's and berth-runtime's "rro": mount_setattr with
			// AT_RECURSIVE makes every mount of the tree read-only at
			// once, so a submount of the source (a USB disk under
			// /media, another bind) cannot be written through it.
			// Create made sure the kernel and the runtime can.
			opts = append(opts, "rro")
		}
		return specs.Mount{Destination: m.Destination, Type: "bind", Source: src, Options: opts}
	}
}

// mountDepth orders mounts parent first: /a before /a/b, so a mount on a
// subdirectory is not hidden by one on its parent.
func mountDepth(p string) int { return strings.Count(path.Clean(p), "/") }

// settleReadOnlyRecursion decides at create how c's read-only binds and
// volumes will be mounted, and records it (c.ReadOnlyRecursive) so every
// start mounts them alike. They are recursively read-only, as in Docker
// since API 1.44, unless nonRecursive asks for the behaviour before it
// (berthd, for older clients), a bind asks for it (ReadOnlyNonRecursive),
// or the kernel or runtime cannot do it; then they are read-only at the
// top only. A bind with ReadOnlyForceRecursive is refused instead when
// recursion is impossible, as dockerd refuses it. The runtime is asked
// only when a mount needs the answer.
func (e *Engine) settleReadOnlyRecursion(ctx context.Context, c *Container, nonRecursive bool) error {
	c.ReadOnlyRecursive = false
	mps, err := containerMounts(c)
	if err != nil {
		return err
	}
	need, force := false, ""
	for _, m := range mps {
		switch {
		case m.Type == mount.TypeTmpfs || m.RW || m.ReadOnlyNonRecursive:
		case m.ReadOnlyForceRecursive:
			if force == "" {
				force = m.Destination
			}
		case !nonRecursive:
			need = true
		}
	}
	if !need && force == "" {
		return nil
	}
	if err := e.recursiveReadOnlySupport(ctx, e.containerRuntime(c)); err != nil {
		if force != "" {
			return fmt.Errorf("mount %s: %w: %w", force, err, errdefs.ErrNotSupported)
		}
		return nil
	}
	c.ReadOnlyRecursive = need
	return nil
}

// rroSupport caches recursiveReadOnlySupport's answer by runtime
// executable: the kernel and the runtime do not change under a process.
var rroSupport sync.Map // runtime path → error (nil: supported)

// recursiveReadOnlySupport says whether a mount tree can be made read-only
// in one step (nil) or why not: the kernel needs mount_setattr (Linux
// 5.12) and the runtime must list "rro" among the mount options of its
// OCI features document, which is how dockerd asks it too. rt is the
// container's own runtime: runc, crun and berth-runtime answer differently.
func (e *Engine) recursiveReadOnlySupport(ctx context.Context, rt string) error {
	if v, ok := rroSupport.Load(rt); ok {
		err, _ := v.(error)
		return err
	}
	err := kernelSupportsRecursiveReadOnly()
	if err == nil {
		err = runtimeSupportsRecursiveReadOnly(ctx, rt)
	}
	rroSupport.Store(rt, err)
	return err
}

// kernelSupportsRecursiveReadOnly reads the kernel release: mount_setattr
// with AT_RECURSIVE arrived in 5.12. Reading the release rather than
// calling it keeps this file free of Linux-only syscalls.
func kernelSupportsRecursiveReadOnly() error {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return fmt.Errorf("rro is not supported: kernel release: %w", err)
	}
	rel := strings.TrimSpace(string(b))
	var major, minor int
	if _, err := fmt.Sscanf(rel, "%d.%d", &major, &minor); err != nil {
		return fmt.Errorf("rro is not supported: kernel release %q: %w", rel, err)
	}
	if major < 5 || (major == 5 && minor < 12) {
		return fmt.Errorf("rro is not supported: kernel %s is older than 5.12", rel)
	}
	return nil
}

// runtimeSupportsRecursiveReadOnly runs `<runtime> features` (runc 1.1,
// crun 1.9, berth-runtime); a runtime without the command cannot be told
// to use an option it may not know.
func runtimeSupportsRecursiveReadOnly(ctx context.Context, rt string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, rt, "features").Output()
	if err != nil {
		return fmt.Errorf("rro is not supported by runtime %s: OCI features struct is not available: %w", filepath.Base(rt), err)
	}
	var f features.Features
	if err := json.Unmarshal(out, &f); err != nil {
		return fmt.Errorf("rro is not supported by runtime %s: features: %w", filepath.Base(rt), err)
	}
	if !slices.Contains(f.MountOptions, "rro") {
		return fmt.Errorf("rro is not supported by runtime %s", filepath.Base(rt))
	}
	return nil
}
