package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cgroups"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/specwire"
)

// Container is the persisted record of one container in the runtime's state
// directory (<root>/<id>/state.json). It is written once by create and
// rewritten only by start; everything else is derived from the kernel.
type Container struct {
	ID      string    `json:"id"`
	Bundle  string    `json:"bundle"`
	Rootfs  string    `json:"rootfs"`
	Pid     int       `json:"pid"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
	// Config is the bundle's config.json as it was at create. It is decoded
	// only by the commands that need it (see Spec): start, state, kill and
	// delete usually do not.
	Config      json.RawMessage   `json:"config"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// HasPoststart and HasPoststop say whether Config has those hooks.
	HasPoststart bool `json:"has_poststart,omitempty"`
	HasPoststop  bool `json:"has_poststop,omitempty"`
	// PidStart is the init's start time in clock ticks since boot
	// (/proc/PID/stat field 22). A pid alone may be reused after the init
	// exits; pid plus start time identifies the process.
	PidStart   uint64 `json:"pid_start"`
	CgroupPath string `json:"cgroup_path"`
	// NamespacePaths are the init's namespace files by OCI type, used by
	// exec to join them.
	NamespacePaths map[specs.LinuxNamespaceType]string `json:"namespace_paths"`

	dir  string
	spec *specs.Spec
	cg   cgroups.Manager
}

// Spec returns the container's OCI spec, decoding it on first use.
func (c *Container) Spec() (*specs.Spec, error) {
	if c.spec != nil {
		return c.spec, nil
	}
	s, err := specwire.DecodeJSON(c.Config)
	if err != nil {
		return nil, fmt.Errorf("container %s: corrupt config in state: %w", c.ID, err)
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	c.spec = s
	return s, nil
}

// Runtime is the root of a state directory (runc's --root).
type Runtime struct {
	Root string
}

// validID accepts what runc accepts: ^[a-zA-Z0-9][a-zA-Z0-9_+.-]*$ (no
// regexp: compiling one costs every start of the runtime).
func validID(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '_' && c != '+' && c != '.' && c != '-')) {
			return false
		}
	}
	return id != ""
}

func checkID(id string) error {
	if id == "" {
		return fmt.Errorf("container id cannot be empty: %w", errdefs.ErrInvalidArgument)
	}
	if len(id) > 1024 || !validID(id) {
		return fmt.Errorf("invalid container id %q: %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.Root, id) }

// Load reads a container's record.
func (r *Runtime) Load(id string) (*Container, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	dir := r.dir(id)
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %s does not exist: %w", id, errdefs.ErrNotFound)
		}
		return nil, err
	}
	c := &Container{dir: dir}
	if err := c.decodeJSON(data); err != nil {
		return nil, fmt.Errorf("container %s: corrupt state: %w", id, err)
	}
	return c, nil
}

// List returns every container in the state directory.
func (r *Runtime) List() ([]*Container, error) {
	ents, err := os.ReadDir(r.Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []*Container
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		c, err := r.Load(e.Name())
		if err != nil {
			continue // a create in progress, or debris removed by delete
		}
		out = append(out, c)
	}
	return out, nil
}

const (
	stateFile = "state.json"
	stateTmp  = ".state.json.tmp" // save's temporary file
	startSock = "start.sock"
)

// save writes the record atomically: a reader sees the old or the new one.
func (c *Container) save() error {
	data := c.appendJSON(make([]byte, 0, 512+len(c.Config)))
	tmp := filepath.Join(c.dir, stateTmp)
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(c.dir, stateFile))
}

// Status values, as in the OCI runtime spec plus runc's "paused".
const (
	StatusCreating = "creating"
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusStopped  = "stopped"
	StatusPaused   = "paused"
)

// Alive reports whether the container's init process still exists (and is
// the same process, not a reuse of its pid).
func (c *Container) Alive() bool {
	if c.Pid <= 0 {
		return false
	}
	st, err := pidStartTime(c.Pid)
	if err != nil {
		return false
	}
	if st != c.PidStart {
		return false
	}
	// A zombie has exited; only its parent has not reaped it yet.
	return !isZombie(c.Pid)
}

// Status derives the lifecycle state from the kernel.
func (c *Container) Status() string {
	if !c.Alive() {
		return StatusStopped
	}
	if m, err := c.cgroup(); err == nil {
		if frozen, err := m.Frozen(); err == nil && frozen {
			return StatusPaused
		}
	}
	if _, err := os.Lstat(filepath.Join(c.dir, startSock)); err == nil {
		return StatusCreated
	}
	if c.settingUp() {
		// The record is saved as soon as the init exists (create_linux.go),
		// and `run` has no start socket: until the init becomes the
		// workload, the container is being created, not running.
		return StatusCreating
	}
	return StatusRunning
}

// settingUp reports whether the container's init still runs the runtime's
// binary, through its read-only bind mount (same inode as ours) or a
// sealed memfd copy (selfexe_linux.go): it has not exec'd the workload yet.
func (c *Container) settingUp() bool {
	exe := "/proc/" + strconv.Itoa(c.Pid) + "/exe"
	var self, init unix.Stat_t
	if unix.Stat(exe, &init) != nil {
		return false
	}
	if unix.Stat("/proc/self/exe", &self) == nil && self.Dev == init.Dev && self.Ino == init.Ino {
		return true
	}
	link, err := os.Readlink(exe)
	return err == nil && strings.HasPrefix(link, "/memfd:berth-runtime")
}

func (c *Container) cgroup() (cgroups.Manager, error) {
	if c.cg != nil {
		return c.cg, nil
	}
	m, err := cgroups.New(c.CgroupPath, c.ID)
	if err != nil {
		return nil, err
	}
	c.cg = m
	return m, nil
}

// OCIState is the state the OCI spec defines (and runc prints).
type OCIState struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}

// State returns the OCI state of the container.
func (c *Container) State() *OCIState {
	st := &OCIState{
		State: specs.State{
			Version: specs.Version,
			ID:      c.ID,
			Status:  specs.ContainerState(c.Status()),
			Bundle:  c.Bundle,
		},
		Rootfs:  c.Rootfs,
		Created: c.Created,
		Owner:   c.Owner,
	}
	if st.Status != StatusStopped {
		st.Pid = c.Pid
	}
	st.Annotations = c.Annotations
	return st
}

func pidStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces and parentheses; the
	// fields we want follow the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); start time is field 22.
	if len(f) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

// signalInit sends sig to the container's init, through a pidfd so the
// signal cannot reach another process that reused the pid.
func (c *Container) signalInit(sig unix.Signal) error {
	fd, err := unix.PidfdOpen(c.Pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrNotRunning)
		}
		return err
	}
	defer unix.Close(fd)
	if st, err := pidStartTime(c.Pid); err != nil || st != c.PidStart {
		return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrNotRunning)
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrNotRunning)
		}
		return err
	}
	return nil
}
