package cli

import (
	"encoding/csv"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// mountOptions applies --volume, --mount and --tmpfs.
func (f *createFlags) mountOptions(hc *container.HostConfig) error {
	hc.Binds = f.volumes
	for _, m := range f.mounts {
		mm, err := parseMount(m)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--mount\" flag: %w", m, err)
		}
		hc.Mounts = append(hc.Mounts, mm)
	}
	for _, t := range f.tmpfs {
		dst, opts, _ := strings.Cut(t, ":")
		if hc.Tmpfs == nil {
			hc.Tmpfs = map[string]string{}
		}
		hc.Tmpfs[dst] = opts
	}
	return nil
}

// parseMount reads --mount's CSV fields into Docker's mount type.
func parseMount(s string) (mount.Mount, error) {
	rec, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return mount.Mount{}, err
	}
	m := mount.Mount{Type: mount.TypeVolume}
	boolVal := func(k, v string, hasV bool) (bool, error) {
		if !hasV {
			return true, nil
		}
		switch strings.ToLower(v) {
		case "1", "true":
			return true, nil
		case "0", "false":
			return false, nil
		}
		return false, fmt.Errorf("invalid value for %s: %s", k, v)
	}
	vol := func() *mount.VolumeOptions {
		if m.VolumeOptions == nil {
			m.VolumeOptions = &mount.VolumeOptions{}
		}
		return m.VolumeOptions
	}
	bind := func() *mount.BindOptions {
		if m.BindOptions == nil {
			m.BindOptions = &mount.BindOptions{}
		}
		return m.BindOptions
	}
	tmpfs := func() *mount.TmpfsOptions {
		if m.TmpfsOptions == nil {
			m.TmpfsOptions = &mount.TmpfsOptions{}
		}
		return m.TmpfsOptions
	}
	for _, field := range rec {
		k, v, hasV := strings.Cut(field, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !hasV && k != "readonly" && k != "ro" && k != "volume-nocopy" && k != "bind-nonrecursive" {
			return m, fmt.Errorf("invalid field '%s' must be a key=value pair", field)
		}
		switch k {
		case "type":
			m.Type = mount.Type(strings.ToLower(v))
		case "source", "src":
			m.Source = v
		case "target", "dst", "destination":
			m.Target = v
		case "readonly", "ro":
			if m.ReadOnly, err = boolVal(k, v, hasV); err != nil {
				return m, err
			}
		case "consistency":
			m.Consistency = mount.Consistency(v)
		case "bind-propagation":
			bind().Propagation = mount.Propagation(strings.ToLower(v))
			if !slices.Contains(mount.Propagations, bind().Propagation) {
				return m, fmt.Errorf("invalid bind-propagation: %s", v)
			}
		case "bind-nonrecursive":
			if bind().NonRecursive, err = boolVal(k, v, hasV); err != nil {
				return m, err
			}
		case "bind-recursive":
			// The docker CLI's names (API 1.44): enabled is the default
			// (submounts included, read-only too where possible),
			// disabled binds the top mount alone, writable keeps
			// submounts writable under a read-only bind (Docker 24's
			// read-only), readonly makes them read-only or fails.
			switch strings.ToLower(v) {
			case "enabled":
				bind()
			case "disabled":
				bind().NonRecursive = true
			case "writable":
				bind().ReadOnlyNonRecursive = true
			case "readonly":
				bind().ReadOnlyForceRecursive = true
			default:
				return m, fmt.Errorf("invalid value for %s: %s (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")", k, v)
			}
		case "volume-nocopy":
			if vol().NoCopy, err = boolVal(k, v, hasV); err != nil {
				return m, err
			}
		case "volume-label":
			lk, lv, _ := strings.Cut(v, "=")
			if vol().Labels == nil {
				vol().Labels = map[string]string{}
			}
			vol().Labels[lk] = lv
		case "volume-driver":
			if vol().DriverConfig == nil {
				vol().DriverConfig = &mount.Driver{}
			}
			vol().DriverConfig.Name = v
		case "volume-opt":
			ok, ov, _ := strings.Cut(v, "=")
			if vol().DriverConfig == nil {
				vol().DriverConfig = &mount.Driver{}
			}
			if vol().DriverConfig.Options == nil {
				vol().DriverConfig.Options = map[string]string{}
			}
			vol().DriverConfig.Options[ok] = ov
		case "volume-subpath":
			vol().Subpath = v
		case "tmpfs-size":
			n, err := units.RAMInBytes(v)
			if err != nil {
				return m, fmt.Errorf("invalid value for %s: %s", k, v)
			}
			tmpfs().SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(v, 8, 32)
			if err != nil {
				return m, fmt.Errorf("invalid value for %s: %s", k, v)
			}
			tmpfs().Mode = goMode(uint32(n))
		default:
			return m, fmt.Errorf("unexpected key '%s' in '%s'", k, field)
		}
	}
	if m.Target == "" {
		return m, fmt.Errorf("target is required")
	}
	if m.Type == mount.TypeBind && m.VolumeOptions != nil {
		return m, fmt.Errorf("cannot mix 'volume-*' options with mount type '%s'", m.Type)
	}
	if m.Type == mount.TypeVolume && m.BindOptions != nil {
		return m, fmt.Errorf("cannot mix 'bind-*' options with mount type '%s'", m.Type)
	}
	if o := m.BindOptions; o != nil && o.ReadOnlyNonRecursive && !m.ReadOnly {
		return m, fmt.Errorf("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction")
	}
	if o := m.BindOptions; o != nil && o.ReadOnlyForceRecursive {
		if !m.ReadOnly {
			return m, fmt.Errorf("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction")
		}
		// A shared or slave bind would let mounts made later on the host
		// appear writable inside: the docker CLI wants rprivate said.
		if o.Propagation != mount.PropagationRPrivate {
			return m, fmt.Errorf("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction")
		}
	}
	if m.Type != mount.TypeTmpfs && m.TmpfsOptions != nil {
		return m, fmt.Errorf("cannot mix 'tmpfs-*' options with mount type '%s'", m.Type)
	}
	return m, nil
}

// goMode turns permission bits with setuid/setgid/sticky into a FileMode.
func goMode(u uint32) os.FileMode {
	m := os.FileMode(u & 0o777)
	if u&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if u&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if u&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}
