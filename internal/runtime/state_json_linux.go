package runtime

import (
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/specwire"
)

// appendJSON appends the record as json.Marshal would write it (the field
// names are Container's JSON tags; Load reads it back with encoding/json),
// without its reflection: create saves the record twice, and in a fresh
// process json.Marshal spends more time building its encoder for the type
// than writing. Strings and maps go through specwire's JSON writer, the
// counterpart of the reader decodeJSON uses. The config, which
// config.json's decoding has validated, is copied as it is rather than
// compacted.
func (c *Container) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = specwire.AppendJSONString(b, c.ID)
	b = append(b, `,"bundle":`...)
	b = specwire.AppendJSONString(b, c.Bundle)
	b = append(b, `,"rootfs":`...)
	b = specwire.AppendJSONString(b, c.Rootfs)
	b = append(b, `,"pid":`...)
	b = strconv.AppendInt(b, int64(c.Pid), 10)
	b = append(b, `,"created":"`...)
	b = c.Created.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","owner":`...)
	b = specwire.AppendJSONString(b, c.Owner)
	b = append(b, `,"config":`...)
	if len(c.Config) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, c.Config...)
	}
	if len(c.Annotations) > 0 {
		b = append(b, `,"annotations":`...)
		b = specwire.AppendJSONStringMap(b, c.Annotations)
	}
	if c.HasPoststart {
		b = append(b, `,"has_poststart":true`...)
	}
	if c.HasPoststop {
		b = append(b, `,"has_poststop":true`...)
	}
	b = append(b, `,"pid_start":`...)
	b = strconv.AppendUint(b, c.PidStart, 10)
	b = append(b, `,"cgroup_path":`...)
	b = specwire.AppendJSONString(b, c.CgroupPath)
	b = append(b, `,"namespace_paths":`...)
	if c.NamespacePaths == nil {
		b = append(b, "null"...)
	} else {
		b = specwire.AppendJSONStringMap(b, c.NamespacePaths)
	}
	return append(b, '}')
}

// decodeJSON reads a record written by appendJSON (or json.Marshal) as
// json.Unmarshal would, without its reflection: every command but create
// starts by loading the record, in a fresh process.
func (c *Container) decodeJSON(data []byte) error {
	r := specwire.NewJSONReader(data)
	r.Object(func(key string) {
		switch key {
		case "id":
			c.ID = r.String()
		case "bundle":
			c.Bundle = r.String()
		case "rootfs":
			c.Rootfs = r.String()
		case "pid":
			c.Pid = int(r.Int(64))
		case "created":
			if s := r.String(); s != "" {
				if err := c.Created.UnmarshalText([]byte(s)); err != nil {
					r.Fail("created: " + err.Error())
				}
			}
		case "owner":
			c.Owner = r.String()
		case "config":
			c.Config = r.Raw()
		case "annotations":
			c.Annotations = r.StringMap()
		case "has_poststart":
			c.HasPoststart = r.Bool()
		case "has_poststop":
			c.HasPoststop = r.Bool()
		case "pid_start":
			c.PidStart = r.Uint(64)
		case "cgroup_path":
			c.CgroupPath = r.String()
		case "namespace_paths":
			m := r.StringMap()
			if m == nil {
				c.NamespacePaths = nil
				return
			}
			c.NamespacePaths = make(map[specs.LinuxNamespaceType]string, len(m))
			for k, v := range m {
				c.NamespacePaths[specs.LinuxNamespaceType(k)] = v
			}
		default:
			r.Skip()
		}
	})
	return r.End()
}
