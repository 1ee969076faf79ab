package engine

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultCaps is Docker's default capability set.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

const defaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// buildSpec turns a container record into the OCI runtime spec for its
// bundle. rootfs is the mounted root filesystem (users and groups are looked
// up in its /etc/passwd and /etc/group, resolved inside it).
func buildSpec(c *Container, rootfs string) (*specs.Spec, error) {
	cfg := &c.Config
	args := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	if len(args) == 0 {
		return nil, fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	env := cfg.Env
	if !hasEnv(env, "PATH") {
		env = append([]string{defaultPathEnv}, env...)
	}
	if !hasEnv(env, "HOSTNAME") {
		env = append(env, "HOSTNAME="+cfg.Hostname)
	}
	if cfg.Tty && !hasEnv(env, "TERM") {
		env = append(env, "TERM=xterm")
	}
	user, err := resolveUser(rootfs, cfg.User)
	if err != nil {
		return nil, err
	}
	if !hasEnv(env, "HOME") {
		env = append(env, "HOME="+user.home)
	}
	cwd := cfg.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	caps := append([]string{}, defaultCaps...)
	// No rlimits by default: the container inherits the engine's, as
	// Docker's containers inherit dockerd's. Raising them needs
	// CAP_SYS_RESOURCE, which a default must not depend on.
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: cfg.Tty,
			User:     specs.User{UID: user.uid, GID: user.gid, AdditionalGids: user.groups},
			Args:     args,
			Env:      env,
			Cwd:      cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
		},
		Root:     &specs.Root{Path: rootfs, Readonly: c.HostConfig.ReadonlyRootfs},
		Hostname: cfg.Hostname,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: "/berth/" + c.ID,
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
			},
			MaskedPaths: []string{
				"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
				"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
				"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
	return s, nil
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
