package specwire

import (
	"maps"
	"os"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// formatVersion leads every encoded spec. The parent and the init are the
// same binary, so they never disagree about the format; the byte is there
// so that feeding the decoder something else (JSON, a stale message) fails
// at byte 0 instead of decoding into nonsense.
const formatVersion = 1

// AppendSpec appends the encoding of s (which may be nil) to b. See the
// package documentation for the fields it drops.
func AppendSpec(b []byte, s *specs.Spec) []byte {
	e := Encoder{B: b}
	e.Spec(s)
	return e.B
}

// DecodeSpec decodes a spec written by AppendSpec from the start of b and
// returns it with the bytes that follow it. On error the spec is nil.
// Strings in the spec share one copy of b (see Decoder).
func DecodeSpec(b []byte) (*specs.Spec, []byte, error) {
	d := Decoder{b: b, s: string(b)}
	s := d.ReadSpec()
	if d.err != nil {
		return nil, nil, d.err
	}
	return s, d.Rest(), nil
}

// Spec appends s, which may be nil, as AppendSpec does.
func (e *Encoder) Spec(s *specs.Spec) {
	e.B = append(e.B, formatVersion)
	if !e.present(s != nil) {
		return
	}
	e.String(s.Version)
	e.Process(s.Process)
	if e.present(s.Root != nil) {
		e.String(s.Root.Path)
		e.Bool(s.Root.Readonly)
	}
	e.String(s.Hostname)
	e.String(s.Domainname)
	e.count(s.Mounts == nil, len(s.Mounts))
	for i := range s.Mounts {
		putMount(e, &s.Mounts[i])
	}
	putHooks(e, s.Hooks)
	putStringMap(e, s.Annotations)
	putLinux(e, s.Linux)
	// Solaris, Windows, VM, ZOS and FreeBSD are dropped: the init runs on
	// Linux only.
}

// ReadSpec reads what Encoder.Spec wrote. Check Err before using it.
func (d *Decoder) ReadSpec() *specs.Spec {
	if d.off >= len(d.s) {
		d.fail("format version", ErrTruncated)
		return nil
	}
	if d.s[d.off] != formatVersion {
		d.fail("format version", ErrMalformed)
		return nil
	}
	d.off++
	if !d.ReadBool() {
		return nil
	}
	s := &specs.Spec{}
	s.Version = d.ReadString()
	s.Process = d.ReadProcess()
	if d.ReadBool() {
		s.Root = &specs.Root{Path: d.ReadString(), Readonly: d.ReadBool()}
	}
	s.Hostname = d.ReadString()
	s.Domainname = d.ReadString()
	if n, isNil := d.count(mountMinSize); !isNil {
		s.Mounts = make([]specs.Mount, n)
		for i := range s.Mounts {
			readMount(d, &s.Mounts[i])
		}
	}
	s.Hooks = readHooks(d)
	s.Annotations = readStringMap(d)
	s.Linux = readLinux(d)
	return s
}

// present writes the presence byte of a pointer and reports it, so that
// encoders read "if e.present(p != nil) { encode *p }".
func (e *Encoder) present(ok bool) bool {
	e.Bool(ok)
	return ok
}

// Process appends p, which may be nil. The init's config carries a process
// of its own besides the spec's (an exec'd process), hence the export.
func (e *Encoder) Process(p *specs.Process) {
	if !e.present(p != nil) {
		return
	}
	e.Bool(p.Terminal)
	if e.present(p.ConsoleSize != nil) {
		e.Uvarint(uint64(p.ConsoleSize.Height))
		e.Uvarint(uint64(p.ConsoleSize.Width))
	}
	u := &p.User
	e.Uvarint(uint64(u.UID))
	e.Uvarint(uint64(u.GID))
	if e.present(u.Umask != nil) {
		e.Uvarint(uint64(*u.Umask))
	}
	e.count(u.AdditionalGids == nil, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		e.Uvarint(uint64(g))
	}
	e.String(u.Username)
	e.Strings(p.Args)
	e.String(p.CommandLine)
	e.Strings(p.Env)
	e.String(p.Cwd)
	if c := p.Capabilities; e.present(c != nil) {
		e.Strings(c.Bounding)
		e.Strings(c.Effective)
		e.Strings(c.Inheritable)
		e.Strings(c.Permitted)
		e.Strings(c.Ambient)
	}
	e.count(p.Rlimits == nil, len(p.Rlimits))
	for _, r := range p.Rlimits {
		e.String(r.Type)
		e.Uvarint(r.Hard)
		e.Uvarint(r.Soft)
	}
	e.Bool(p.NoNewPrivileges)
	e.String(p.ApparmorProfile)
	if e.present(p.OOMScoreAdj != nil) {
		e.Varint(int64(*p.OOMScoreAdj))
	}
	if sc := p.Scheduler; e.present(sc != nil) {
		e.String(string(sc.Policy))
		e.Varint(int64(sc.Nice))
		e.Varint(int64(sc.Priority))
		putStrings(e, sc.Flags)
		e.Uvarint(sc.Runtime)
		e.Uvarint(sc.Deadline)
		e.Uvarint(sc.Period)
	}
	e.String(p.SelinuxLabel)
	if io := p.IOPriority; e.present(io != nil) {
		e.String(string(io.Class))
		e.Varint(int64(io.Priority))
	}
	if a := p.ExecCPUAffinity; e.present(a != nil) {
		e.String(a.Initial)
		e.String(a.Final)
	}
}

const rlimitMinSize = 3 // type, hard, soft

// ReadProcess reads what Encoder.Process wrote. Check Err before using it.
func (d *Decoder) ReadProcess() *specs.Process {
	if !d.ReadBool() {
		return nil
	}
	p := &specs.Process{}
	p.Terminal = d.ReadBool()
	if d.ReadBool() {
		p.ConsoleSize = &specs.Box{Height: d.readUint(), Width: d.readUint()}
	}
	u := &p.User
	u.UID = d.readUint32()
	u.GID = d.readUint32()
	if d.ReadBool() {
		u.Umask = ptr(d.readUint32())
	}
	if n, isNil := d.count(1); !isNil {
		u.AdditionalGids = make([]uint32, n)
		for i := range u.AdditionalGids {
			u.AdditionalGids[i] = d.readUint32()
		}
	}
	u.Username = d.ReadString()
	p.Args = d.ReadStrings()
	p.CommandLine = d.ReadString()
	p.Env = d.ReadStrings()
	p.Cwd = d.ReadString()
	if d.ReadBool() {
		p.Capabilities = &specs.LinuxCapabilities{
			Bounding:    d.ReadStrings(),
			Effective:   d.ReadStrings(),
			Inheritable: d.ReadStrings(),
			Permitted:   d.ReadStrings(),
			Ambient:     d.ReadStrings(),
		}
	}
	if n, isNil := d.count(rlimitMinSize); !isNil {
		p.Rlimits = make([]specs.POSIXRlimit, n)
		for i := range p.Rlimits {
			p.Rlimits[i] = specs.POSIXRlimit{Type: d.ReadString(), Hard: d.ReadUvarint(), Soft: d.ReadUvarint()}
		}
	}
	p.NoNewPrivileges = d.ReadBool()
	p.ApparmorProfile = d.ReadString()
	if d.ReadBool() {
		p.OOMScoreAdj = ptr(d.readInt())
	}
	if d.ReadBool() {
		p.Scheduler = &specs.Scheduler{
			Policy:   specs.LinuxSchedulerPolicy(d.ReadString()),
			Nice:     d.readInt32(),
			Priority: d.readInt32(),
			Flags:    readStrings[specs.LinuxSchedulerFlag](d),
			Runtime:  d.ReadUvarint(),
			Deadline: d.ReadUvarint(),
			Period:   d.ReadUvarint(),
		}
	}
	p.SelinuxLabel = d.ReadString()
	if d.ReadBool() {
		p.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPriorityClass(d.ReadString()), Priority: d.readInt()}
	}
	if d.ReadBool() {
		p.ExecCPUAffinity = &specs.CPUAffinity{Initial: d.ReadString(), Final: d.ReadString()}
	}
	return p
}

const mountMinSize = 6 // destination, type, source, options, uid and gid mappings

func putMount(e *Encoder, m *specs.Mount) {
	e.String(m.Destination)
	e.String(m.Type)
	e.String(m.Source)
	e.Strings(m.Options)
	putIDMappings(e, m.UIDMappings)
	putIDMappings(e, m.GIDMappings)
}

func readMount(d *Decoder, m *specs.Mount) {
	m.Destination = d.ReadString()
	m.Type = d.ReadString()
	m.Source = d.ReadString()
	m.Options = d.ReadStrings()
	m.UIDMappings = readIDMappings(d)
	m.GIDMappings = readIDMappings(d)
}

const idMappingMinSize = 3

func putIDMappings(e *Encoder, ms []specs.LinuxIDMapping) {
	e.count(ms == nil, len(ms))
	for _, m := range ms {
		e.Uvarint(uint64(m.ContainerID))
		e.Uvarint(uint64(m.HostID))
		e.Uvarint(uint64(m.Size))
	}
}

func readIDMappings(d *Decoder) []specs.LinuxIDMapping {
	n, isNil := d.count(idMappingMinSize)
	if isNil {
		return nil
	}
	ms := make([]specs.LinuxIDMapping, n)
	for i := range ms {
		ms[i] = specs.LinuxIDMapping{ContainerID: d.readUint32(), HostID: d.readUint32(), Size: d.readUint32()}
	}
	return ms
}

func putHooks(e *Encoder, h *specs.Hooks) {
	if !e.present(h != nil) {
		return
	}
	//nolint:staticcheck // Prestart is deprecated but still honoured.
	for _, hs := range [...][]specs.Hook{h.Prestart, h.CreateRuntime, h.CreateContainer, h.StartContainer, h.Poststart, h.Poststop} {
		e.count(hs == nil, len(hs))
		for i := range hs {
			e.String(hs[i].Path)
			e.Strings(hs[i].Args)
			e.Strings(hs[i].Env)
			if e.present(hs[i].Timeout != nil) {
				e.Varint(int64(*hs[i].Timeout))
			}
		}
	}
}

const hookMinSize = 4 // path, args, env, timeout presence

func readHooks(d *Decoder) *specs.Hooks {
	if !d.ReadBool() {
		return nil
	}
	h := &specs.Hooks{}
	//nolint:staticcheck // Prestart is deprecated but still honoured.
	for _, hs := range [...]*[]specs.Hook{&h.Prestart, &h.CreateRuntime, &h.CreateContainer, &h.StartContainer, &h.Poststart, &h.Poststop} {
		n, isNil := d.count(hookMinSize)
		if isNil {
			continue
		}
		*hs = make([]specs.Hook, n)
		for i := range *hs {
			k := &(*hs)[i]
			k.Path = d.ReadString()
			k.Args = d.ReadStrings()
			k.Env = d.ReadStrings()
			if d.ReadBool() {
				k.Timeout = ptr(d.readInt())
			}
		}
	}
	return h
}

// Maps are written in key order so that one spec always encodes to the
// same bytes. Sorting costs the parent a little; the init only reads.
func putStringMap(e *Encoder, m map[string]string) {
	e.count(m == nil, len(m))
	if len(m) == 0 {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		e.String(k)
		e.String(m[k])
	}
}

func readStringMap(d *Decoder) map[string]string {
	n, isNil := d.count(2)
	if isNil {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := d.ReadString()
		m[k] = d.ReadString()
	}
	return m
}

func putLinux(e *Encoder, l *specs.Linux) {
	if !e.present(l != nil) {
		return
	}
	putIDMappings(e, l.UIDMappings)
	putIDMappings(e, l.GIDMappings)
	putStringMap(e, l.Sysctl)
	// Resources, NetDevices and IntelRdt are dropped: the parent applies
	// them from the host side (cgroup limits, moving network devices, the
	// resctrl group) before or while the init runs; the init never reads
	// them.
	e.String(l.CgroupsPath)
	e.count(l.Namespaces == nil, len(l.Namespaces))
	for _, ns := range l.Namespaces {
		e.String(string(ns.Type))
		e.String(ns.Path)
	}
	e.count(l.Devices == nil, len(l.Devices))
	for i := range l.Devices {
		putDevice(e, &l.Devices[i])
	}
	putSeccomp(e, l.Seccomp)
	e.String(l.RootfsPropagation)
	e.Strings(l.MaskedPaths)
	e.Strings(l.ReadonlyPaths)
	e.String(l.MountLabel)
	if mp := l.MemoryPolicy; e.present(mp != nil) {
		e.String(string(mp.Mode))
		e.String(mp.Nodes)
		putStrings(e, mp.Flags)
	}
	if p := l.Personality; e.present(p != nil) {
		e.String(string(p.Domain))
		putStrings(e, p.Flags)
	}
	putTimeOffsets(e, l.TimeOffsets)
}

func putTimeOffsets(e *Encoder, m map[string]specs.LinuxTimeOffset) {
	e.count(m == nil, len(m))
	if len(m) == 0 {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		e.String(k)
		e.Varint(m[k].Secs)
		e.Uvarint(uint64(m[k].Nanosecs))
	}
}

const (
	namespaceMinSize  = 2 // type, path
	timeOffsetMinSize = 3 // clock, secs, nanosecs
)

func readLinux(d *Decoder) *specs.Linux {
	if !d.ReadBool() {
		return nil
	}
	l := &specs.Linux{}
	l.UIDMappings = readIDMappings(d)
	l.GIDMappings = readIDMappings(d)
	l.Sysctl = readStringMap(d)
	l.CgroupsPath = d.ReadString()
	if n, isNil := d.count(namespaceMinSize); !isNil {
		l.Namespaces = make([]specs.LinuxNamespace, n)
		for i := range l.Namespaces {
			l.Namespaces[i] = specs.LinuxNamespace{Type: specs.LinuxNamespaceType(d.ReadString()), Path: d.ReadString()}
		}
	}
	if n, isNil := d.count(deviceMinSize); !isNil {
		l.Devices = make([]specs.LinuxDevice, n)
		for i := range l.Devices {
			readDevice(d, &l.Devices[i])
		}
	}
	l.Seccomp = readSeccomp(d)
	l.RootfsPropagation = d.ReadString()
	l.MaskedPaths = d.ReadStrings()
	l.ReadonlyPaths = d.ReadStrings()
	l.MountLabel = d.ReadString()
	if d.ReadBool() {
		l.MemoryPolicy = &specs.LinuxMemoryPolicy{
			Mode:  specs.MemoryPolicyModeType(d.ReadString()),
			Nodes: d.ReadString(),
			Flags: readStrings[specs.MemoryPolicyFlagType](d),
		}
	}
	if d.ReadBool() {
		l.Personality = &specs.LinuxPersonality{
			Domain: specs.LinuxPersonalityDomain(d.ReadString()),
			Flags:  readStrings[specs.LinuxPersonalityFlag](d),
		}
	}
	if n, isNil := d.count(timeOffsetMinSize); !isNil {
		l.TimeOffsets = make(map[string]specs.LinuxTimeOffset, n)
		for range n {
			k := d.ReadString()
			l.TimeOffsets[k] = specs.LinuxTimeOffset{Secs: d.ReadVarint(), Nanosecs: d.readUint32()}
		}
	}
	return l
}

const deviceMinSize = 7 // path, type, major, minor, three presence bytes

func putDevice(e *Encoder, v *specs.LinuxDevice) {
	e.String(v.Path)
	e.String(v.Type)
	e.Varint(v.Major)
	e.Varint(v.Minor)
	if e.present(v.FileMode != nil) {
		e.Uvarint(uint64(*v.FileMode))
	}
	if e.present(v.UID != nil) {
		e.Uvarint(uint64(*v.UID))
	}
	if e.present(v.GID != nil) {
		e.Uvarint(uint64(*v.GID))
	}
}

func readDevice(d *Decoder, v *specs.LinuxDevice) {
	v.Path = d.ReadString()
	v.Type = d.ReadString()
	v.Major = d.ReadVarint()
	v.Minor = d.ReadVarint()
	if d.ReadBool() {
		v.FileMode = ptr(os.FileMode(d.readUint32()))
	}
	if d.ReadBool() {
		v.UID = ptr(d.readUint32())
	}
	if d.ReadBool() {
		v.GID = ptr(d.readUint32())
	}
}

func putSeccomp(e *Encoder, s *specs.LinuxSeccomp) {
	if !e.present(s != nil) {
		return
	}
	e.String(string(s.DefaultAction))
	if e.present(s.DefaultErrnoRet != nil) {
		e.Uvarint(uint64(*s.DefaultErrnoRet))
	}
	putStrings(e, s.Architectures)
	putStrings(e, s.Flags)
	e.String(s.ListenerPath)
	e.String(s.ListenerMetadata)
	e.count(s.Syscalls == nil, len(s.Syscalls))
	for i := range s.Syscalls {
		sc := &s.Syscalls[i]
		e.Strings(sc.Names)
		e.String(string(sc.Action))
		if e.present(sc.ErrnoRet != nil) {
			e.Uvarint(uint64(*sc.ErrnoRet))
		}
		e.count(sc.Args == nil, len(sc.Args))
		for _, a := range sc.Args {
			e.Uvarint(uint64(a.Index))
			e.Uvarint(a.Value)
			e.Uvarint(a.ValueTwo)
			e.String(string(a.Op))
		}
	}
}

const (
	syscallMinSize    = 4 // names, action, errno presence, args
	seccompArgMinSize = 4 // index, value, valueTwo, op
)

func readSeccomp(d *Decoder) *specs.LinuxSeccomp {
	if !d.ReadBool() {
		return nil
	}
	s := &specs.LinuxSeccomp{}
	s.DefaultAction = specs.LinuxSeccompAction(d.ReadString())
	if d.ReadBool() {
		s.DefaultErrnoRet = ptr(d.readUint())
	}
	s.Architectures = readStrings[specs.Arch](d)
	s.Flags = readStrings[specs.LinuxSeccompFlag](d)
	s.ListenerPath = d.ReadString()
	s.ListenerMetadata = d.ReadString()
	n, isNil := d.count(syscallMinSize)
	if isNil {
		return s
	}
	s.Syscalls = make([]specs.LinuxSyscall, n)
	for i := range s.Syscalls {
		sc := &s.Syscalls[i]
		sc.Names = d.ReadStrings()
		sc.Action = specs.LinuxSeccompAction(d.ReadString())
		if d.ReadBool() {
			sc.ErrnoRet = ptr(d.readUint())
		}
		if n, isNil := d.count(seccompArgMinSize); !isNil {
			sc.Args = make([]specs.LinuxSeccompArg, n)
			for j := range sc.Args {
				sc.Args[j] = specs.LinuxSeccompArg{
					Index:    d.readUint(),
					Value:    d.ReadUvarint(),
					ValueTwo: d.ReadUvarint(),
					Op:       specs.LinuxSeccompOperator(d.ReadString()),
				}
			}
		}
	}
	return s
}

func ptr[T any](v T) *T { return &v }
