package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/specwire"
)

// The parent runtime process and the container's init talk over a stream
// socketpair with length-prefixed binary messages. The exchange for create:
//
//	parent -> init   msgConfig
//	parent -> init   msgPrepared (the cgroup is complete; maybe files to enter it)
//	parent -> init   msgPlaced   (the init is in its cgroup; its OCI state)
//	init   -> parent msgHooks    (mounts done; run createRuntime hooks)
//	parent -> init   msgHooksDone
//	init   -> parent msgReady    (about to wait for `start`)
//
// How the init gets into its cgroup is in cgroupjob_linux.go: on v1 its own
// thread enters when msgPrepared lists the files to write; otherwise it was
// born inside, or the parent moved it in before msgPrepared. The init waits
// for msgPrepared before it bind-mounts its cgroup or creates device nodes
// and before its root switch, for msgPlaced before anything that needs its
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
	Type   string
	Error  string
	Config *initConfig
	// State comes with msgPlaced: the init's host pid is known only then.
	State *specs.State
	// Files come with msgPrepared: the cgroup files the init's thread
	// writes "0" to, to move itself in (see cgroupjob_linux.go).
	Files []string
	// FDs, if any, are open descriptors of Files, passed alongside the
	// message (SCM_RIGHTS; see fdpass_linux.go).
	FDs []int
}

// initConfig is everything the init needs, sent once.
type initConfig struct {
	ID      string
	Bundle  string
	Rootfs  string
	Spec    *specs.Spec
	NoPivot bool
	// Exec is set when the process joins a running container.
	Exec    bool
	Process *specs.Process
	// UserNS: the container has its own user namespace.
	UserNS   bool
	CgroupNS bool
	NewMount bool
	NewUTS   bool
	TimeNS   bool
	// LateNS are new namespaces (network, IPC, UTS clone flags) the init
	// enters first thing: from LateNSDir (a /proc/PID/task/TID/ns directory
	// of a parent thread that made them meanwhile) or by unsharing.
	LateNS    uint64
	LateNSDir string
	// AutoStart: exec the workload once ready, without waiting for start.
	AutoStart bool
	// CgroupPath is the container's cgroup, created before the init.
	CgroupPath string
	// Descriptor numbers in the init; -1 when absent.
	ConsoleFd  int
	ListenFd   int
	PreserveFd int
	// Hooks tells the init to pause for the parent's createRuntime hooks.
	Hooks bool
}

// Messages are framed as a 4-byte big-endian length, a type byte and a
// payload in internal/specwire's encoding: the init is a fresh process, and
// encoding/json would spend over a millisecond there building decoders
// before the container could start.
var msgTypes = []string{msgConfig, msgPrepared, msgPlaced, msgHooks, msgHooksDone, msgReady, msgError}

func writeMsg(w io.Writer, m *syncMsg) error {
	t := -1
	for i, name := range msgTypes {
		if name == m.Type {
			t = i
		}
	}
	if t < 0 {
		return fmt.Errorf("sync: unknown message type %q", m.Type)
	}
	e := &specwire.Encoder{B: make([]byte, 5, 512)}
	e.B[4] = byte(t)
	switch m.Type {
	case msgError:
		e.String(m.Error)
	case msgConfig:
		m.Config.encode(e)
	case msgPlaced:
		encodeState(e, m.State)
	case msgPrepared:
		e.Strings(m.Files)
	}
	binary.BigEndian.PutUint32(e.B, uint32(len(e.B)-4))
	if len(m.FDs) > 0 {
		return sendWithFDs(w, e.B, m.FDs)
	}
	_, err := w.Write(e.B)
	return err
}

const maxMsg = 64 << 20

func readMsg(r io.Reader) (*syncMsg, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > maxMsg {
		return nil, fmt.Errorf("sync: bad message length %d", n)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, err
	}
	if int(data[0]) >= len(msgTypes) {
		return nil, fmt.Errorf("sync: unknown message type %d", data[0])
	}
	m := &syncMsg{Type: msgTypes[data[0]]}
	d := specwire.NewDecoder(data[1:])
	switch m.Type {
	case msgError:
		m.Error = d.ReadString()
	case msgConfig:
		m.Config = decodeConfig(d)
	case msgPlaced:
		m.State = decodeState(d)
	case msgPrepared:
		m.Files = d.ReadStrings()
	}
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("sync: %s message: %w", m.Type, err)
	}
	if m.Type == msgError {
		return m, errors.New(m.Error)
	}
	return m, nil
}

func (c *initConfig) encode(e *specwire.Encoder) {
	e.String(c.ID)
	e.String(c.Bundle)
	e.String(c.Rootfs)
	e.String(c.CgroupPath)
	e.String(c.LateNSDir)
	e.Uvarint(c.LateNS)
	e.Spec(c.Spec)
	e.Process(c.Process)
	for _, b := range []bool{c.NoPivot, c.Exec, c.UserNS, c.CgroupNS, c.NewMount, c.NewUTS, c.TimeNS, c.AutoStart, c.Hooks} {
		e.Bool(b)
	}
	for _, fd := range []int{c.ConsoleFd, c.ListenFd, c.PreserveFd} {
		e.Varint(int64(fd))
	}
}

func decodeConfig(d *specwire.Decoder) *initConfig {
	c := &initConfig{
		ID:         d.ReadString(),
		Bundle:     d.ReadString(),
		Rootfs:     d.ReadString(),
		CgroupPath: d.ReadString(),
		LateNSDir:  d.ReadString(),
		LateNS:     d.ReadUvarint(),
		Spec:       d.ReadSpec(),
		Process:    d.ReadProcess(),
	}
	for _, b := range []*bool{&c.NoPivot, &c.Exec, &c.UserNS, &c.CgroupNS, &c.NewMount, &c.NewUTS, &c.TimeNS, &c.AutoStart, &c.Hooks} {
		*b = d.ReadBool()
	}
	for _, fd := range []*int{&c.ConsoleFd, &c.ListenFd, &c.PreserveFd} {
		*fd = int(d.ReadVarint())
	}
	if c.Spec != nil && c.Spec.Linux == nil {
		c.Spec.Linux = &specs.Linux{}
	}
	return c
}

func encodeState(e *specwire.Encoder, st *specs.State) {
	e.String(st.Version)
	e.String(st.ID)
	e.String(string(st.Status))
	e.Varint(int64(st.Pid))
	e.String(st.Bundle)
	keys := make([]string, 0, len(st.Annotations))
	for k := range st.Annotations {
		keys = append(keys, k)
	}
	e.Uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.String(k)
		e.String(st.Annotations[k])
	}
}

func decodeState(d *specwire.Decoder) *specs.State {
	st := &specs.State{
		Version: d.ReadString(),
		ID:      d.ReadString(),
		Status:  specs.ContainerState(d.ReadString()),
		Pid:     int(d.ReadVarint()),
		Bundle:  d.ReadString(),
	}
	n := d.ReadUvarint()
	if n > 0 && d.Err() == nil {
		st.Annotations = map[string]string{}
		for i := uint64(0); i < n && d.Err() == nil; i++ {
			k := d.ReadString()
			st.Annotations[k] = d.ReadString()
		}
	}
	return st
}

// awaitExec waits for the process at the other end of sock to become its
// workload. Its end of the socket is close-on-exec, so EOF means execve
// succeeded; a message says why it did not.
func awaitExec(sock *os.File) error {
	m, err := readMsg(sock)
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("sync: unexpected %q before exec", m.Type)
}

// expect reads one message and checks its type.
func expect(f *os.File, typ string) (*syncMsg, error) {
	m, err := readMsg(f)
	return expected(m, err, typ)
}

// expectWithFDs is expect for a message that may carry descriptors
// (readMsgWithFDs).
func expectWithFDs(f *os.File, typ string) (*syncMsg, error) {
	m, err := readMsgWithFDs(f)
	if err == nil && m.Type != typ {
		closeFDs(m.FDs)
	}
	return expected(m, err, typ)
}

func expected(m *syncMsg, err error, typ string) (*syncMsg, error) {
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
