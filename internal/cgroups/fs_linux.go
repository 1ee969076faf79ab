package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The cgroup files are tiny and written once each: plain open/write/close
// syscalls, no os.File (whose poller registration and finalizer cost more
// than the write itself), no O_CREAT (a missing file must be an error, not
// a new regular file in a test directory or an EACCES surprise on cgroupfs).

// writeFile writes data to dir/name in one write(2): cgroupfs parses each
// write separately, so splitting a write would split the value.
func writeFile(dir, name, data string) error {
	p := dir + "/" + name
	fd, err := openRetry(p, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, []byte(data))
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", data, p, err)
	}
	return nil
}

func openRetry(p string, flags int) (int, error) {
	for {
		fd, err := unix.Open(p, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// readFile returns the contents of dir/name.
func readFile(dir, name string) (string, error) {
	p := dir + "/" + name
	fd, err := openRetry(p, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	var buf [4096]byte
	var out []byte
	for {
		n, err := unix.Read(fd, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", &os.PathError{Op: "read", Path: p, Err: err}
		}
		if n == 0 {
			return string(out), nil
		}
		out = append(out, buf[:n]...)
	}
}

// readTrim is readFile without the trailing newline.
func readTrim(dir, name string) (string, error) {
	s, err := readFile(dir, name)
	return strings.TrimSpace(s), err
}

// readUint reads a single number; "max" (v2) reads as math.MaxUint64 and a
// v1 "-1" as well, matching what runc reports for unlimited.
func readUint(dir, name string) (uint64, error) {
	s, err := readTrim(dir, name)
	if err != nil {
		return 0, err
	}
	return parseUint(s)
}

func parseUint(s string) (uint64, error) {
	if s == "max" || s == "-1" {
		return ^uint64(0), nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// Negative values (e.g. a v1 soft limit of -1) clamp to 0.
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("parse %q: %w", s, err)
	}
	return v, nil
}

// readKeyValues parses "key value" lines (memory.stat, cpu.stat, ...).
func readKeyValues(dir, name string) (map[string]uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := parseUint(strings.TrimSpace(v)); err == nil {
			out[k] = n
		}
	}
	return out, nil
}

// readKey returns one value of a "key value" file, 0 if the key is absent.
func readKey(dir, name, key string) (uint64, error) {
	kv, err := readKeyValues(dir, name)
	if err != nil {
		return 0, err
	}
	return kv[key], nil
}

// readPids reads cgroup.procs of dir and, recursively, of its children.
func readPids(dir string, out []int) ([]int, error) {
	s, err := readFile(dir, "cgroup.procs")
	if err != nil {
		return out, err
	}
	for _, f := range strings.Fields(s) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return out, fmt.Errorf("parse %s/cgroup.procs: %w", dir, err)
		}
		out = append(out, pid)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out, err
	}
	for _, e := range ents {
		if e.IsDir() {
			if out, err = readPids(filepath.Join(dir, e.Name()), out); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// removeCgroup removes dir and every cgroup below it, children first:
// cgroupfs directories can only be rmdir'ed (their files cannot be
// unlinked), and only once they have no children and no tasks. A task that
// was just killed stays attached until it is fully reaped, so EBUSY is
// retried for a short while. A missing directory is not an error.
//
// Containers rarely have child cgroups, so the rmdir is tried first and the
// directory is listed only when it fails: a listing is an open, two
// getdents and a close per hierarchy on every delete.
func removeCgroup(dir string) error {
	delay := time.Millisecond
	listed := false
	for i := 0; ; i++ {
		err := unix.Rmdir(dir)
		switch {
		case err == nil || err == unix.ENOENT:
			return nil
		case err == unix.EINTR:
			continue
		case err == unix.EBUSY && !listed:
			// Children, or tasks still attached: remove the children
			// first, then try again at once.
			listed = true
			if err := removeChildren(dir); err != nil {
				return err
			}
			continue
		case err == unix.EBUSY && i < 10:
			time.Sleep(delay)
			delay *= 2
			continue
		}
		return &os.PathError{Op: "rmdir", Path: dir, Err: err}
	}
}

// removeChildren removes the cgroups below dir.
func removeChildren(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := removeCgroup(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitFor polls check until it reports done, with a backoff from 100µs to
// 10ms, for at most timeout. Polling beats inotify here: the states it
// waits for are usually reached within a millisecond and it needs no
// goroutine or extra file descriptor.
func waitFor(timeout time.Duration, check func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	delay := 100 * time.Microsecond
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return errTimeout
		}
		time.Sleep(delay)
		delay = min(delay*2, 10*time.Millisecond)
	}
}

var errTimeout = errors.New("timed out")
