package archive

import (
	"archive/tar"
	"os"
)

// Most layer entries belong to root:root, and root creates them so: a new
// inode is owned by the creator's fsuid, and its group is the creator's
// fsgid or, under a setgid parent directory or the grpid mount option, the
// parent's group. When both are 0 and so is the parent's group, fchown(0, 0)
// after creation changes nothing, and skipping it saves a syscall for
// almost every entry (thousands per image).
//
// The mode is always set with fchmod: what open(2) and mkdir(2) make of a
// mode depends on the umask, which another goroutine of the same process
// may change for a moment (a server creating its socket does), and on
// default ACLs; an explicit fchmod depends on neither.

// creatorIsRoot reports whether this process creates inodes as 0:0.
// Go never changes the fsuid/fsgid apart from the effective IDs.
func creatorIsRoot() bool { return os.Geteuid() == 0 && os.Getegid() == 0 }

// ownedAsWanted reports whether an entry just created in the cached parent
// directory is already owned as hdr says.
func (a *applier) ownedAsWanted(hdr *tar.Header) bool {
	return a.rootCreator && hdr.Uid == 0 && hdr.Gid == 0 && a.root.cacheFd >= 0 && a.root.cacheGid == 0
}
