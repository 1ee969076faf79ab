package runtime

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The parent runtime process and the container's init talk over a stream
// socketpair with length-prefixed JSON messages. The exchange for create:
//
//	parent -> init   msgConfig   (queued before the init starts)
//	parent -> init   msgPrepared (the cgroup exists, with its limits)
//	parent -> init   msgPlaced   (the init is in its cgroup; its OCI state)
//	init   -> parent msgHooks    (mounts done; run createRuntime hooks)
//	parent -> init   msgHooksDone
//	init   -> parent msgReady    (about to wait for `start`)
//
// The config goes first so the init builds its root filesystem while the
// parent moves it into its cgroup, which waits for an RCU grace period
// (5-10 ms here: see cgroups.Prewarm). The init waits for msgPrepared before
// it bind-mounts its cgroup, for msgPlaced before anything that needs its
// place in the cgroup (a cgroup namespace, hooks) and, always, before it
// reports ready: it can never reach the workload outside its cgroup.
//
// Either side may send msgError instead; the init then exits. If the parent
// dies, the init reads EOF and exits, so a killed `create` leaves no
// half-built container running.
const (
	msgConfig    = "config"
	msgPrepared  = "prepared"
	msgPlaced    = "placed"
	msgHooks     = "hooks"
	msgHooksDone = "hooks-done"
	msgReady     = "ready"
	msgError     = "error"
)

type syncMsg struct {
	Type   string      `json:"type"`
	Error  string      `json:"error,omitempty"`
	Config *initConfig `json:"config,omitempty"`
	// State comes with msgPlaced: the init's host pid is known only then.
	State *specs.State `json:"state,omitempty"`
}

// initConfig is everything the init needs, sent once.
type initConfig struct {
	ID      string      `json:"id"`
	Bundle  string      `json:"bundle"`
	Rootfs  string      `json:"rootfs"`
	Spec    *specs.Spec `json:"spec"`
	NoPivot bool        `json:"no_pivot,omitempty"`
	// Exec is set when the process joins a running container.
	Exec    bool           `json:"exec,omitempty"`
	Process *specs.Process `json:"process"`
	// UserNS: the container has its own user namespace.
	UserNS   bool `json:"userns,omitempty"`
	CgroupNS bool `json:"cgroupns,omitempty"`
	NewMount bool `json:"new_mount,omitempty"`
	NewUTS   bool `json:"new_uts,omitempty"`
	TimeNS   bool `json:"timens,omitempty"`
	NetNS    bool `json:"netns,omitempty"` // unshare a network namespace
	// AutoStart: exec the workload once ready, without waiting for start.
	AutoStart bool `json:"autostart,omitempty"`
	// CgroupPath is the container's cgroup, created before the init.
	CgroupPath string `json:"cgroup_path"`
	// Descriptor numbers in the init; -1 when absent.
	ConsoleFd  int `json:"console_fd"`
	ListenFd   int `json:"listen_fd"`
	PreserveFd int `json:"preserve_fds"`
	// Hooks tells the init to pause for the parent's createRuntime hooks.
	Hooks bool `json:"hooks,omitempty"`
}

func writeMsg(w io.Writer, m *syncMsg) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	buf := make([]byte, 4+len(data))
	binary.BigEndian.PutUint32(buf, uint32(len(data)))
	copy(buf[4:], data)
	_, err = w.Write(buf)
	return err
}

const maxMsg = 64 << 20

func readMsg(r io.Reader) (*syncMsg, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxMsg {
		return nil, fmt.Errorf("sync message too large (%d bytes)", n)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, err
	}
	m := &syncMsg{}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, err
	}
	if m.Type == msgError {
		return m, errors.New(m.Error)
	}
	return m, nil
}

// expect reads one message and checks its type.
func expect(f *os.File, typ string) (*syncMsg, error) {
	m, err := readMsg(f)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("container init exited unexpectedly")
		}
		return nil, err
	}
	if m.Type != typ {
		return nil, fmt.Errorf("sync: expected %q, got %q", typ, m.Type)
	}
	return m, nil
}
