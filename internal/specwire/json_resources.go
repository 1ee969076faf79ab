package specwire

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The cgroup section of config.json, for DecodeJSON.

func jsonResources(r *jsonReader, res *specs.LinuxResources) {
	r.object(func(k string) {
		switch k {
		case "devices":
			res.Devices = sliceOf(r, func(d *specs.LinuxDeviceCgroup) { jsonDeviceCgroup(r, d) })
		case "memory":
			res.Memory = ptrTo(r, func(m *specs.LinuxMemory) { jsonMemory(r, m) })
		case "cpu":
			res.CPU = ptrTo(r, func(c *specs.LinuxCPU) { jsonCPU(r, c) })
		case "pids":
			res.Pids = ptrTo(r, func(p *specs.LinuxPids) {
				r.object(func(k string) {
					if k == "limit" {
						p.Limit = i64Ptr(r)
						return
					}
					r.skip()
				})
			})
		case "blockio":
			res.BlockIO = ptrTo(r, func(b *specs.LinuxBlockIO) { jsonBlockIO(r, b) })
		case "hugepagelimits":
			res.HugepageLimits = sliceOf(r, func(h *specs.LinuxHugepageLimit) {
				r.object(func(k string) {
					switch k {
					case "pagesize":
						h.Pagesize = r.str()
					case "limit":
						h.Limit = r.unsigned(64)
					default:
						r.skip()
					}
				})
			})
		case "network":
			res.Network = ptrTo(r, func(n *specs.LinuxNetwork) {
				r.object(func(k string) {
					switch k {
					case "classid":
						n.ClassID = u32Ptr(r)
					case "priorities":
						n.Priorities = sliceOf(r, func(p *specs.LinuxInterfacePriority) {
							r.object(func(k string) {
								switch k {
								case "name":
									p.Name = r.str()
								case "priority":
									p.Priority = uint32(r.unsigned(32))
								default:
									r.skip()
								}
							})
						})
					default:
						r.skip()
					}
				})
			})
		case "rdma":
			res.Rdma = mapOf(r, func(v *specs.LinuxRdma) {
				r.object(func(k string) {
					switch k {
					case "hcahandles":
						v.HcaHandles = u32Ptr(r)
					case "hcaobjects":
						v.HcaObjects = u32Ptr(r)
					default:
						r.skip()
					}
				})
			})
		case "unified":
			res.Unified = stringMap(r)
		default:
			r.skip()
		}
	})
}

func i64Ptr(r *jsonReader) *int64 { return ptrTo(r, func(v *int64) { *v = r.signed(64) }) }
func u64Ptr(r *jsonReader) *uint64 {
	return ptrTo(r, func(v *uint64) { *v = r.unsigned(64) })
}
func u16Ptr(r *jsonReader) *uint16 {
	return ptrTo(r, func(v *uint16) { *v = uint16(r.unsigned(16)) })
}
func boolPtr(r *jsonReader) *bool { return ptrTo(r, func(v *bool) { *v = r.boolean() }) }
func u32Ptr(r *jsonReader) *uint32 {
	return ptrTo(r, func(v *uint32) { *v = uint32(r.unsigned(32)) })
}
func intPtr(r *jsonReader) *int { return ptrTo(r, func(v *int) { *v = int(r.signed(64)) }) }

func jsonDeviceCgroup(r *jsonReader, d *specs.LinuxDeviceCgroup) {
	r.object(func(k string) {
		switch k {
		case "allow":
			d.Allow = r.boolean()
		case "type":
			d.Type = r.str()
		case "major":
			d.Major = i64Ptr(r)
		case "minor":
			d.Minor = i64Ptr(r)
		case "access":
			d.Access = r.str()
		default:
			r.skip()
		}
	})
}

func jsonMemory(r *jsonReader, m *specs.LinuxMemory) {
	r.object(func(k string) {
		switch k {
		case "limit":
			m.Limit = i64Ptr(r)
		case "reservation":
			m.Reservation = i64Ptr(r)
		case "swap":
			m.Swap = i64Ptr(r)
		case "kernel":
			m.Kernel = i64Ptr(r) //nolint:staticcheck // deprecated but decoded
		case "kerneltcp":
			m.KernelTCP = i64Ptr(r) //nolint:staticcheck // deprecated but decoded
		case "swappiness":
			m.Swappiness = u64Ptr(r)
		case "disableoomkiller":
			m.DisableOOMKiller = boolPtr(r)
		case "usehierarchy":
			m.UseHierarchy = boolPtr(r)
		case "checkbeforeupdate":
			m.CheckBeforeUpdate = boolPtr(r)
		default:
			r.skip()
		}
	})
}

func jsonCPU(r *jsonReader, c *specs.LinuxCPU) {
	r.object(func(k string) {
		switch k {
		case "shares":
			c.Shares = u64Ptr(r)
		case "quota":
			c.Quota = i64Ptr(r)
		case "burst":
			c.Burst = u64Ptr(r)
		case "period":
			c.Period = u64Ptr(r)
		case "realtimeruntime":
			c.RealtimeRuntime = i64Ptr(r)
		case "realtimeperiod":
			c.RealtimePeriod = u64Ptr(r)
		case "cpus":
			c.Cpus = r.str()
		case "mems":
			c.Mems = r.str()
		case "idle":
			c.Idle = i64Ptr(r)
		default:
			r.skip()
		}
	})
}

func jsonBlockIO(r *jsonReader, b *specs.LinuxBlockIO) {
	throttle := func() []specs.LinuxThrottleDevice {
		return sliceOf(r, func(d *specs.LinuxThrottleDevice) {
			r.object(func(k string) {
				switch k {
				case "major":
					d.Major = r.signed(64)
				case "minor":
					d.Minor = r.signed(64)
				case "rate":
					d.Rate = r.unsigned(64)
				default:
					r.skip()
				}
			})
		})
	}
	r.object(func(k string) {
		switch k {
		case "weight":
			b.Weight = u16Ptr(r)
		case "leafweight":
			b.LeafWeight = u16Ptr(r)
		case "weightdevice":
			b.WeightDevice = sliceOf(r, func(d *specs.LinuxWeightDevice) {
				r.object(func(k string) {
					switch k {
					case "major":
						d.Major = r.signed(64)
					case "minor":
						d.Minor = r.signed(64)
					case "weight":
						d.Weight = u16Ptr(r)
					case "leafweight":
						d.LeafWeight = u16Ptr(r)
					default:
						r.skip()
					}
				})
			})
		case "throttlereadbpsdevice":
			b.ThrottleReadBpsDevice = throttle()
		case "throttlewritebpsdevice":
			b.ThrottleWriteBpsDevice = throttle()
		case "throttlereadiopsdevice":
			b.ThrottleReadIOPSDevice = throttle()
		case "throttlewriteiopsdevice":
			b.ThrottleWriteIOPSDevice = throttle()
		default:
			r.skip()
		}
	})
}
