package specwire

import (
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DecodeJSON decodes a config.json into a spec as json.Unmarshal would
// (see json.go for the rules and what is skipped), without reflection.
// Errors wrap ErrJSON.
func DecodeJSON(data []byte) (*specs.Spec, error) {
	r := &jsonReader{b: data}
	s := &specs.Spec{}
	if r.peek() != '{' {
		// null or a scalar: json.Unmarshal would leave the spec empty or
		// fail; a config must be an object either way.
		r.typeError("spec object")
		return nil, r.err
	}
	jsonSpec(r, s)
	r.end()
	if r.err != nil {
		return nil, r.err
	}
	return s, nil
}

// Field names below are the JSON names lower-cased: see jsonReader.object.

func jsonSpec(r *jsonReader, s *specs.Spec) {
	r.object(func(k string) {
		switch k {
		case "ociversion":
			s.Version = r.str()
		case "process":
			s.Process = ptrTo(r, func(p *specs.Process) { jsonProcess(r, p) })
		case "root":
			s.Root = ptrTo(r, func(v *specs.Root) {
				r.object(func(k string) {
					switch k {
					case "path":
						v.Path = r.str()
					case "readonly":
						v.Readonly = r.boolean()
					default:
						r.skip()
					}
				})
			})
		case "hostname":
			s.Hostname = r.str()
		case "domainname":
			s.Domainname = r.str()
		case "mounts":
			s.Mounts = sliceOf(r, func(m *specs.Mount) { jsonMount(r, m) })
		case "hooks":
			s.Hooks = ptrTo(r, func(h *specs.Hooks) { jsonHooks(r, h) })
		case "annotations":
			s.Annotations = stringMap(r)
		case "linux":
			s.Linux = ptrTo(r, func(l *specs.Linux) { jsonLinux(r, l) })
		default:
			r.skip()
		}
	})
}

func jsonProcess(r *jsonReader, p *specs.Process) {
	r.object(func(k string) {
		switch k {
		case "terminal":
			p.Terminal = r.boolean()
		case "consolesize":
			p.ConsoleSize = ptrTo(r, func(b *specs.Box) {
				r.object(func(k string) {
					switch k {
					case "height":
						b.Height = uint(r.unsigned(64))
					case "width":
						b.Width = uint(r.unsigned(64))
					default:
						r.skip()
					}
				})
			})
		case "user":
			jsonUser(r, &p.User)
		case "args":
			p.Args = stringsOf[string](r)
		case "commandline":
			p.CommandLine = r.str()
		case "env":
			p.Env = stringsOf[string](r)
		case "cwd":
			p.Cwd = r.str()
		case "capabilities":
			p.Capabilities = ptrTo(r, func(c *specs.LinuxCapabilities) {
				r.object(func(k string) {
					switch k {
					case "bounding":
						c.Bounding = stringsOf[string](r)
					case "effective":
						c.Effective = stringsOf[string](r)
					case "inheritable":
						c.Inheritable = stringsOf[string](r)
					case "permitted":
						c.Permitted = stringsOf[string](r)
					case "ambient":
						c.Ambient = stringsOf[string](r)
					default:
						r.skip()
					}
				})
			})
		case "rlimits":
			p.Rlimits = sliceOf(r, func(l *specs.POSIXRlimit) {
				r.object(func(k string) {
					switch k {
					case "type":
						l.Type = r.str()
					case "hard":
						l.Hard = r.unsigned(64)
					case "soft":
						l.Soft = r.unsigned(64)
					default:
						r.skip()
					}
				})
			})
		case "nonewprivileges":
			p.NoNewPrivileges = r.boolean()
		case "apparmorprofile":
			p.ApparmorProfile = r.str()
		case "oomscoreadj":
			p.OOMScoreAdj = intPtr(r)
		case "scheduler":
			p.Scheduler = ptrTo(r, func(s *specs.Scheduler) { jsonScheduler(r, s) })
		case "selinuxlabel":
			p.SelinuxLabel = r.str()
		case "iopriority":
			p.IOPriority = ptrTo(r, func(io *specs.LinuxIOPriority) {
				r.object(func(k string) {
					switch k {
					case "class":
						io.Class = specs.IOPriorityClass(r.str())
					case "priority":
						io.Priority = int(r.signed(64))
					default:
						r.skip()
					}
				})
			})
		case "execcpuaffinity":
			p.ExecCPUAffinity = ptrTo(r, func(a *specs.CPUAffinity) {
				r.object(func(k string) {
					switch k {
					case "initial":
						a.Initial = r.str()
					case "final":
						a.Final = r.str()
					default:
						r.skip()
					}
				})
			})
		default:
			r.skip()
		}
	})
}

func jsonUser(r *jsonReader, u *specs.User) {
	r.object(func(k string) {
		switch k {
		case "uid":
			u.UID = uint32(r.unsigned(32))
		case "gid":
			u.GID = uint32(r.unsigned(32))
		case "umask":
			u.Umask = u32Ptr(r)
		case "additionalgids":
			u.AdditionalGids = sliceOf(r, func(v *uint32) { *v = uint32(r.unsigned(32)) })
		case "username":
			u.Username = r.str()
		default:
			r.skip()
		}
	})
}

func jsonScheduler(r *jsonReader, s *specs.Scheduler) {
	r.object(func(k string) {
		switch k {
		case "policy":
			s.Policy = specs.LinuxSchedulerPolicy(r.str())
		case "nice":
			s.Nice = int32(r.signed(32))
		case "priority":
			s.Priority = int32(r.signed(32))
		case "flags":
			s.Flags = stringsOf[specs.LinuxSchedulerFlag](r)
		case "runtime":
			s.Runtime = r.unsigned(64)
		case "deadline":
			s.Deadline = r.unsigned(64)
		case "period":
			s.Period = r.unsigned(64)
		default:
			r.skip()
		}
	})
}

func jsonMount(r *jsonReader, m *specs.Mount) {
	r.object(func(k string) {
		switch k {
		case "destination":
			m.Destination = r.str()
		case "type":
			m.Type = r.str()
		case "source":
			m.Source = r.str()
		case "options":
			m.Options = stringsOf[string](r)
		case "uidmappings":
			m.UIDMappings = jsonIDMaps(r)
		case "gidmappings":
			m.GIDMappings = jsonIDMaps(r)
		default:
			r.skip()
		}
	})
}

func jsonIDMaps(r *jsonReader) []specs.LinuxIDMapping {
	return sliceOf(r, func(m *specs.LinuxIDMapping) {
		r.object(func(k string) {
			switch k {
			case "containerid":
				m.ContainerID = uint32(r.unsigned(32))
			case "hostid":
				m.HostID = uint32(r.unsigned(32))
			case "size":
				m.Size = uint32(r.unsigned(32))
			default:
				r.skip()
			}
		})
	})
}

func jsonHooks(r *jsonReader, h *specs.Hooks) {
	list := func() []specs.Hook {
		return sliceOf(r, func(hk *specs.Hook) {
			r.object(func(k string) {
				switch k {
				case "path":
					hk.Path = r.str()
				case "args":
					hk.Args = stringsOf[string](r)
				case "env":
					hk.Env = stringsOf[string](r)
				case "timeout":
					hk.Timeout = intPtr(r)
				default:
					r.skip()
				}
			})
		})
	}
	r.object(func(k string) {
		switch k {
		case "prestart":
			h.Prestart = list() //nolint:staticcheck // deprecated but decoded
		case "createruntime":
			h.CreateRuntime = list()
		case "createcontainer":
			h.CreateContainer = list()
		case "startcontainer":
			h.StartContainer = list()
		case "poststart":
			h.Poststart = list()
		case "poststop":
			h.Poststop = list()
		default:
			r.skip()
		}
	})
}

func jsonLinux(r *jsonReader, l *specs.Linux) {
	r.object(func(k string) {
		switch k {
		case "uidmappings":
			l.UIDMappings = jsonIDMaps(r)
		case "gidmappings":
			l.GIDMappings = jsonIDMaps(r)
		case "sysctl":
			l.Sysctl = stringMap(r)
		case "resources":
			l.Resources = ptrTo(r, func(res *specs.LinuxResources) { jsonResources(r, res) })
		case "cgroupspath":
			l.CgroupsPath = r.str()
		case "namespaces":
			l.Namespaces = sliceOf(r, func(ns *specs.LinuxNamespace) {
				r.object(func(k string) {
					switch k {
					case "type":
						ns.Type = specs.LinuxNamespaceType(r.str())
					case "path":
						ns.Path = r.str()
					default:
						r.skip()
					}
				})
			})
		case "devices":
			l.Devices = sliceOf(r, func(d *specs.LinuxDevice) { jsonDevice(r, d) })
		case "netdevices":
			l.NetDevices = mapOf(r, func(d *specs.LinuxNetDevice) {
				r.object(func(k string) {
					if k == "name" {
						d.Name = r.str()
						return
					}
					r.skip()
				})
			})
		case "seccomp":
			l.Seccomp = ptrTo(r, func(s *specs.LinuxSeccomp) { jsonSeccomp(r, s) })
		case "rootfspropagation":
			l.RootfsPropagation = r.str()
		case "maskedpaths":
			l.MaskedPaths = stringsOf[string](r)
		case "readonlypaths":
			l.ReadonlyPaths = stringsOf[string](r)
		case "mountlabel":
			l.MountLabel = r.str()
		case "intelrdt":
			l.IntelRdt = ptrTo(r, func(v *specs.LinuxIntelRdt) { jsonIntelRdt(r, v) })
		case "memorypolicy":
			l.MemoryPolicy = ptrTo(r, func(m *specs.LinuxMemoryPolicy) {
				r.object(func(k string) {
					switch k {
					case "mode":
						m.Mode = specs.MemoryPolicyModeType(r.str())
					case "nodes":
						m.Nodes = r.str()
					case "flags":
						m.Flags = stringsOf[specs.MemoryPolicyFlagType](r)
					default:
						r.skip()
					}
				})
			})
		case "personality":
			l.Personality = ptrTo(r, func(p *specs.LinuxPersonality) {
				r.object(func(k string) {
					switch k {
					case "domain":
						p.Domain = specs.LinuxPersonalityDomain(r.str())
					case "flags":
						p.Flags = stringsOf[specs.LinuxPersonalityFlag](r)
					default:
						r.skip()
					}
				})
			})
		case "timeoffsets":
			l.TimeOffsets = mapOf(r, func(o *specs.LinuxTimeOffset) {
				r.object(func(k string) {
					switch k {
					case "secs":
						o.Secs = r.signed(64)
					case "nanosecs":
						o.Nanosecs = uint32(r.unsigned(32))
					default:
						r.skip()
					}
				})
			})
		default:
			r.skip()
		}
	})
}

func jsonIntelRdt(r *jsonReader, v *specs.LinuxIntelRdt) {
	r.object(func(k string) {
		switch k {
		case "closid":
			v.ClosID = r.str()
		case "schemata":
			v.Schemata = stringsOf[string](r)
		case "l3cacheschema":
			v.L3CacheSchema = r.str()
		case "membwschema":
			v.MemBwSchema = r.str()
		case "enablemonitoring":
			v.EnableMonitoring = r.boolean()
		default:
			r.skip()
		}
	})
}

func jsonDevice(r *jsonReader, d *specs.LinuxDevice) {
	r.object(func(k string) {
		switch k {
		case "path":
			d.Path = r.str()
		case "type":
			d.Type = r.str()
		case "major":
			d.Major = r.signed(64)
		case "minor":
			d.Minor = r.signed(64)
		case "filemode":
			d.FileMode = ptrTo(r, func(v *os.FileMode) { *v = os.FileMode(r.unsigned(32)) })
		case "uid":
			d.UID = u32Ptr(r)
		case "gid":
			d.GID = u32Ptr(r)
		default:
			r.skip()
		}
	})
}

func jsonSeccomp(r *jsonReader, s *specs.LinuxSeccomp) {
	r.object(func(k string) {
		switch k {
		case "defaultaction":
			s.DefaultAction = specs.LinuxSeccompAction(r.str())
		case "defaulterrnoret":
			s.DefaultErrnoRet = ptrTo(r, func(v *uint) { *v = uint(r.unsigned(64)) })
		case "architectures":
			s.Architectures = stringsOf[specs.Arch](r)
		case "flags":
			s.Flags = stringsOf[specs.LinuxSeccompFlag](r)
		case "listenerpath":
			s.ListenerPath = r.str()
		case "listenermetadata":
			s.ListenerMetadata = r.str()
		case "syscalls":
			s.Syscalls = sliceOf(r, func(sc *specs.LinuxSyscall) { jsonSyscall(r, sc) })
		default:
			r.skip()
		}
	})
}

func jsonSyscall(r *jsonReader, sc *specs.LinuxSyscall) {
	r.object(func(k string) {
		switch k {
		case "names":
			sc.Names = stringsOf[string](r)
		case "action":
			sc.Action = specs.LinuxSeccompAction(r.str())
		case "errnoret":
			sc.ErrnoRet = ptrTo(r, func(v *uint) { *v = uint(r.unsigned(64)) })
		case "args":
			sc.Args = sliceOf(r, func(a *specs.LinuxSeccompArg) {
				r.object(func(k string) {
					switch k {
					case "index":
						a.Index = uint(r.unsigned(64))
					case "value":
						a.Value = r.unsigned(64)
					case "valuetwo":
						a.ValueTwo = r.unsigned(64)
					case "op":
						a.Op = specs.LinuxSeccompOperator(r.str())
					default:
						r.skip()
					}
				})
			})
		default:
			r.skip()
		}
	})
}
