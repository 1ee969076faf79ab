package rootfs

import (
	"strings"

	"golang.org/x/sys/unix"
)

// mountOptions is an OCI mount's options list split the way mount(2) wants it.
type mountOptions struct {
	flags       uintptr   // applied with the mount itself
	clearFlags  uintptr   // explicitly negated ("rw", "suid", ...)
	propagation []uintptr // applied after the mount, one call each
	recAttrSet  uint64    // "rro" and friends: mount_setattr with AT_RECURSIVE
	data        []string  // passed to the filesystem
	bind        bool
	recursive   bool
}

type flagOption struct {
	clear bool
	flag  uintptr
}

var flagOptions = map[string]flagOption{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"iversion":      {false, unix.MS_I_VERSION},
	"lazytime":      {false, unix.MS_LAZYTIME},
	"loud":          {true, unix.MS_SILENT},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"noiversion":    {true, unix.MS_I_VERSION},
	"nolazytime":    {true, unix.MS_LAZYTIME},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"silent":        {false, unix.MS_SILENT},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

var propagationOptions = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"shared":      unix.MS_SHARED,
	"slave":       unix.MS_SLAVE,
	"unbindable":  unix.MS_UNBINDABLE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

var recursiveAttrs = map[string]uint64{
	"rro":      unix.MOUNT_ATTR_RDONLY,
	"rnosuid":  unix.MOUNT_ATTR_NOSUID,
	"rnodev":   unix.MOUNT_ATTR_NODEV,
	"rnoexec":  unix.MOUNT_ATTR_NOEXEC,
	"rnoatime": unix.MOUNT_ATTR_NOATIME,
}

func parseMountOptions(opts []string) mountOptions {
	var m mountOptions
	for _, o := range opts {
		switch o {
		case "bind":
			m.bind = true
			continue
		case "rbind":
			m.bind, m.recursive = true, true
			continue
		}
		if f, ok := flagOptions[o]; ok {
			if f.clear {
				m.flags &^= f.flag
				m.clearFlags |= f.flag
			} else {
				m.flags |= f.flag
			}
			continue
		}
		if p, ok := propagationOptions[o]; ok {
			m.propagation = append(m.propagation, p)
			continue
		}
		if a, ok := recursiveAttrs[o]; ok {
			m.recAttrSet |= a
			continue
		}
		// Options such as "idmap", "tmpcopyup" or "rrw" that have no mount(2)
		// meaning are not filesystem data either.
		if o == "rrw" || o == "tmpcopyup" || strings.HasPrefix(o, "idmap") || strings.HasPrefix(o, "ridmap") {
			continue
		}
		m.data = append(m.data, o)
	}
	return m
}

// mountPropagation maps rootfsPropagation to the flags applied to "/".
func mountPropagation(p string) (uintptr, bool) {
	if p == "" {
		return unix.MS_SLAVE | unix.MS_REC, true
	}
	f, ok := propagationOptions[p]
	return f, ok
}
