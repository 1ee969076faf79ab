package engine

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const defaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// initPathInContainer is where --init's binary is mounted (Docker uses
// /sbin/docker-init for its tini).
const initPathInContainer = "/sbin/berth-init"

// specEnv is what buildSpec needs from the engine beyond the container
// record: where volumes live, the --init binary, the user-namespace mapping
// and the root path to hand the runtime. Engine.containerSpec fills it.
type specEnv struct {
	// volumePath is a volume's directory on the host (nil: volumes are
	// not available, and a container using one fails to build).
	volumePath func(name string) string
	// initPath is the host path of the berth-init binary ("" when not found).
	initPath string
	// uidMap and gidMap are the container's user-namespace mappings
	// (nil: no user namespace).
	uidMap, gidMap []specs.LinuxIDMapping
	// root overrides rootfs as the spec's root.
	root string
	// premounted are user mount destinations already mounted under the
	// rootfs (idmapped, for --userns): the runtime must not mount them again.
	premounted map[string]bool
}

// buildSpec turns a container record into the OCI runtime spec for its
// bundle. rootfs is the mounted root filesystem (users and groups are looked
// up in its /etc/passwd and /etc/group, resolved inside it). Containers with
// volumes, --init or --userns need the engine's help: see
// Engine.containerSpec.
func buildSpec(c *Container, rootfs string) (*specs.Spec, error) {
	return buildSpecEnv(c, rootfs, specEnv{})
}

func buildSpecEnv(c *Container, rootfs string, env specEnv) (*specs.Spec, error) {
	cfg, hc := &c.Config, &c.HostConfig
	args := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	if len(args) == 0 {
		return nil, fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	penv := cfg.Env
	if !hasEnv(penv, "PATH") {
		penv = append([]string{defaultPathEnv}, penv...)
	}
	if !hasEnv(penv, "HOSTNAME") {
		penv = append(penv, "HOSTNAME="+cfg.Hostname)
	}
	if cfg.Tty && !hasEnv(penv, "TERM") {
		penv = append(penv, "TERM=xterm")
	}
	user, err := resolveUser(rootfs, cfg.User)
	if err != nil {
		return nil, err
	}
	if !hasEnv(penv, "HOME") {
		penv = append(penv, "HOME="+user.home)
	}
	for _, g := range hc.GroupAdd {
		gid, ok := lookupGroup(readColonFile(rootfs, "/etc/group"), g)
		if !ok {
			return nil, fmt.Errorf("unable to find group %s: no matching entries in group file: %w", g, errdefs.ErrInvalidArgument)
		}
		user.groups = append(user.groups, gid)
	}
	cwd := cfg.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	sec, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return nil, err
	}
	if err := checkUserns(hc); err != nil {
		return nil, err
	}
	capList, err := containerCaps(hc)
	if err != nil {
		return nil, err
	}
	rlimits, err := containerRlimits(hc.Ulimits)
	if err != nil {
		return nil, err
	}
	res, err := containerResources(&hc.Resources)
	if err != nil {
		return nil, err
	}
	if err := validateSysctls(hc.Sysctls, hc.NetworkMode.IsHost()); err != nil {
		return nil, err
	}
	devices, devRules, err := containerDevices(hc.Devices)
	if err != nil {
		return nil, err
	}
	root := rootfs
	if env.root != "" {
		root = env.root
	}
	// No rlimits by default: the container inherits the engine's, as
	// Docker's containers inherit dockerd's. Raising them needs
	// CAP_SYS_RESOURCE, which a default must not depend on.
	s := &specs.Spec{
		Process: &specs.Process{
			Terminal:        cfg.Tty,
			User:            specs.User{UID: user.uid, GID: user.gid, AdditionalGids: user.groups},
			Args:            args,
			Env:             penv,
			Cwd:             cwd,
			NoNewPrivileges: sec.noNewPrivileges,
			Rlimits:         rlimits,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: capList, Effective: capList, Permitted: capList,
			},
		},
		Root:     &specs.Root{Path: root, Readonly: hc.ReadonlyRootfs},
		Hostname: cfg.Hostname,
		Mounts:   defaultMounts(hc.Privileged, hc.ShmSize),
		Linux: &specs.Linux{
			CgroupsPath: "/berth/" + c.ID,
			Resources:   res,
			Sysctl:      hc.Sysctls,
			Devices:     devices,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
			},
			MaskedPaths:   defaultMaskedPaths,
			ReadonlyPaths: defaultReadonlyPaths,
		},
	}
	if hc.OomScoreAdj != 0 {
		if err := validateOOMScoreAdj(hc.OomScoreAdj); err != nil {
			return nil, err
		}
		v := hc.OomScoreAdj
		s.Process.OOMScoreAdj = &v
	}
	// The device cgroup: deny all, then what the container may use. A
	// privileged container gets every host device and no device filter.
	res.Devices = append([]specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}, devRules...)
	if hc.Privileged {
		host, err := privilegedDevices()
		if err != nil {
			return nil, fmt.Errorf("privileged: list host devices: %w", err)
		}
		s.Linux.Devices = append(host, devices...)
		res.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	if hc.MaskedPaths != nil {
		s.Linux.MaskedPaths = hc.MaskedPaths
	}
	if hc.ReadonlyPaths != nil {
		s.Linux.ReadonlyPaths = hc.ReadonlyPaths
	}
	if hc.Privileged || sec.systemPaths {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	}
	if s.Linux.Seccomp, err = containerSeccomp(hc.Privileged, sec.seccomp, capList); err != nil {
		return nil, err
	}
	if err := addUserMounts(s, c, env); err != nil {
		return nil, err
	}
	if hc.Init != nil && *hc.Init {
		if env.initPath == "" {
			return nil, fmt.Errorf("--init: the berth-init binary was not found beside berth or in $PATH: %w", errdefs.ErrNotFound)
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: initPathInContainer, Type: "bind", Source: env.initPath,
			Options: []string{"bind", "ro", "nosuid", "nodev"}})
		s.Process.Args = append([]string{initPathInContainer, "--"}, s.Process.Args...)
	}
	if env.uidMap != nil {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings, s.Linux.GIDMappings = env.uidMap, env.gidMap
	}
	// Last, once the content is known: the oldest version that defines it
	// (see ociVersion), so that runtimes that check it (crun 1.8) run
	// what they can. What callers add later (network namespace path,
	// resolver and host file binds) is 1.0 content.
	s.Version = ociVersion(s)
	return s, nil
}

// validateHostConfig runs the checks buildSpec makes that do not need the
// rootfs, for create time.
func validateHostConfig(c *Container) error {
	hc := &c.HostConfig
	sec, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return err
	}
	capList, err := containerCaps(hc)
	if err != nil {
		return err
	}
	if _, err := containerSeccomp(hc.Privileged, sec.seccomp, capList); err != nil {
		return err
	}
	if _, err := containerRlimits(hc.Ulimits); err != nil {
		return err
	}
	if _, err := containerResources(&hc.Resources); err != nil {
		return err
	}
	if err := validateSysctls(hc.Sysctls, hc.NetworkMode.IsHost()); err != nil {
		return err
	}
	if _, _, err := containerDevices(hc.Devices); err != nil {
		return err
	}
	if hc.OomScoreAdj != 0 {
		if err := validateOOMScoreAdj(hc.OomScoreAdj); err != nil {
			return err
		}
	}
	if err := checkUserns(hc); err != nil {
		return err
	}
	_, err = containerMounts(c)
	return err
}

func checkUserns(hc *container.HostConfig) error {
	r, auto, err := parseUserns(string(hc.UsernsMode))
	if err != nil {
		return err
	}
	if (r.size > 0 || auto) && hc.Privileged {
		return fmt.Errorf("privileged mode is incompatible with user namespaces. You must run the container in the host namespace when running privileged mode: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// defaultMounts are Docker's: /proc, a tmpfs /dev with pts, shm and mqueue,
// and /sys with the cgroup tree, read-only unless privileged.
func defaultMounts(privileged bool, shmSize int64) []specs.Mount {
	sysMode := "ro"
	if privileged {
		sysMode = "rw"
	}
	shm := "size=65536k" // Docker's default 64 MB
	if shmSize > 0 {
		shm = "size=" + strconv.FormatInt(shmSize, 10)
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", shm}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", sysMode}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", sysMode}},
	}
}

// addUserMounts adds the container's -v/--mount/--tmpfs/VOLUME mounts. A
// user mount replaces a default one on the same path (a --tmpfs /dev/shm),
// and mounts are ordered parent first.
func addUserMounts(s *specs.Spec, c *Container, env specEnv) error {
	mps, err := containerMounts(c)
	if err != nil {
		return err
	}
	if len(mps) == 0 {
		return nil
	}
	user := map[string]bool{}
	var extra []specs.Mount
	for _, m := range mps {
		if env.premounted[m.Destination] {
			continue
		}
		if m.Type == mount.TypeVolume && env.volumePath == nil {
			return fmt.Errorf("volume %s: volumes are prepared by Engine.containerSpec: %w", m.Source, errdefs.ErrNotSupported)
		}
		user[m.Destination] = true
		extra = append(extra, m.specMount(env.volumePath))
	}
	kept := s.Mounts[:0]
	for _, m := range s.Mounts {
		if !user[m.Destination] {
			kept = append(kept, m)
		}
	}
	sort.SliceStable(extra, func(i, j int) bool { return mountDepth(extra[i].Destination) < mountDepth(extra[j].Destination) })
	s.Mounts = append(kept, extra...)
	return nil
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return true
		}
	}
	return false
}

type execUser struct {
	uid, gid uint32
	groups   []uint32
	home     string
}

// resolveUser parses Docker's user forms (name, uid, name:group, uid:gid)
// against the container's own passwd and group files. Both files are opened
// through a path resolved inside rootfs, so an image's symlinked /etc/passwd
// cannot make us read a host file.
func resolveUser(rootfs, spec string) (execUser, error) {
	u := execUser{home: "/"}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	passwd := readColonFile(rootfs, "/etc/passwd")
	found := false
	for _, f := range passwd {
		if len(f) < 6 {
			continue
		}
		if f[0] == userPart || f[2] == userPart {
			uid, err1 := strconv.ParseUint(f[2], 10, 32)
			gid, err2 := strconv.ParseUint(f[3], 10, 32)
			if err1 != nil || err2 != nil {
				continue
			}
			u.uid, u.gid, u.home, found = uint32(uid), uint32(gid), f[5], true
			userPart = f[0]
			break
		}
	}
	if !found {
		uid, err := strconv.ParseUint(userPart, 10, 32)
		if err != nil {
			return u, fmt.Errorf("unable to find user %s: no matching entries in passwd file: %w", userPart, errdefs.ErrInvalidArgument)
		}
		u.uid, u.gid = uint32(uid), uint32(uid)
		if uid != 0 {
			u.gid = 0
		}
	}
	groups := readColonFile(rootfs, "/etc/group")
	if hasGroup {
		gid, ok := lookupGroup(groups, groupPart)
		if !ok {
			return u, fmt.Errorf("unable to find group %s: no matching entries in group file: %w", groupPart, errdefs.ErrInvalidArgument)
		}
		u.gid = gid
	} else if found {
		// Supplementary groups from /etc/group, as Docker does when no
		// group is given.
		for _, g := range groups {
			if len(g) < 4 {
				continue
			}
			for _, m := range strings.Split(g[3], ",") {
				if m == userPart {
					if gid, err := strconv.ParseUint(g[2], 10, 32); err == nil && uint32(gid) != u.gid {
						u.groups = append(u.groups, uint32(gid))
					}
				}
			}
		}
	}
	return u, nil
}

func lookupGroup(groups [][]string, name string) (uint32, bool) {
	for _, g := range groups {
		if len(g) >= 3 && (g[0] == name || g[2] == name) {
			if gid, err := strconv.ParseUint(g[2], 10, 32); err == nil {
				return uint32(gid), true
			}
		}
	}
	if gid, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(gid), true
	}
	return 0, false
}

func readColonFile(rootfs, path string) [][]string {
	p, err := securejoin.SecureJoin(rootfs, path)
	if err != nil {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}
