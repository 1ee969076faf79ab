package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/volume"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	volumetypes "github.com/moby/moby/api/types/volume"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func init() { RemoveVolumesHook = removeContainerVolumes }

// volumes opens the volume store under the engine's root (cheap: the store
// holds no state beyond its directory).
func (e *Engine) volumes() (*volume.Store, error) {
	return volume.Open(filepath.Join(e.opts.Root, "volumes"))
}

// VolumeCreateOptions are `volume create`'s flags (Docker's create request).
type VolumeCreateOptions = volumetypes.CreateRequest

// apiVolume renders a record in Docker's API shape.
func apiVolume(v *volume.Volume, refs int) volumetypes.Volume {
	return volumetypes.Volume{
		Name: v.Name, Driver: v.Driver, Mountpoint: v.Mountpoint,
		CreatedAt: v.CreatedAt.Format(time.RFC3339),
		Labels:    v.Labels, Options: v.Options, Scope: "local",
		UsageData: &volumetypes.UsageData{RefCount: int64(refs), Size: -1},
	}
}

// VolumeCreate makes a named volume (a random name when none is given), or
// returns the existing one of that name.
func (e *Engine) VolumeCreate(ctx context.Context, o VolumeCreateOptions) (volumetypes.Volume, error) {
	s, err := e.volumes()
	if err != nil {
		return volumetypes.Volume{}, err
	}
	name := o.Name
	if name == "" {
		var b [32]byte
		_, _ = rand.Read(b[:])
		name = hex.EncodeToString(b[:])
	}
	v, created, err := s.Create(name, volume.CreateOptions{Driver: o.Driver, Labels: o.Labels, Options: o.DriverOpts})
	if err != nil {
		return volumetypes.Volume{}, err
	}
	if created {
		e.volumeEvent(events.ActionCreate, v.Name)
	}
	users, _ := e.volumeUsers()
	return apiVolume(v, len(users[v.Name])), nil
}

func (e *Engine) volumeEvent(action events.Action, name string) {
	now := time.Now()
	e.appendEvent(events.Message{Type: events.VolumeEventType, Action: action, Scope: "local",
		Time: now.Unix(), TimeNano: now.UnixNano(),
		Actor: events.Actor{ID: name, Attributes: map[string]string{"driver": volume.DriverLocal}}})
}

// VolumeInspect returns one volume.
func (e *Engine) VolumeInspect(ctx context.Context, name string) (volumetypes.Volume, error) {
	s, err := e.volumes()
	if err != nil {
		return volumetypes.Volume{}, err
	}
	v, err := s.Get(name)
	if err != nil {
		return volumetypes.Volume{}, fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	users, _ := e.volumeUsers()
	return apiVolume(v, len(users[v.Name])), nil
}

// VolumeList returns every volume, UsageData.RefCount counting the
// containers (running or not) that use it: 0 is Docker's "dangling".
func (e *Engine) VolumeList(ctx context.Context) ([]volumetypes.Volume, error) {
	s, err := e.volumes()
	if err != nil {
		return nil, err
	}
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	users, err := e.volumeUsers()
	if err != nil {
		return nil, err
	}
	out := make([]volumetypes.Volume, 0, len(list))
	for _, v := range list {
		out = append(out, apiVolume(v, len(users[v.Name])))
	}
	return out, nil
}

// volumeUsers maps each volume name to the containers whose mounts use it,
// read from the container records: the records are the truth, so no
// reference count can drift after a kill -9.
func (e *Engine) volumeUsers() (map[string][]string, error) {
	all, err := e.listContainers()
	if err != nil {
		return nil, err
	}
	users := map[string][]string{}
	for _, c := range all {
		mps, err := containerMounts(c)
		if err != nil {
			continue
		}
		for _, m := range mps {
			if m.Type == mount.TypeVolume {
				users[m.Source] = append(users[m.Source], c.ID)
			}
		}
	}
	return users, nil
}

// VolumeRemove removes a volume no container uses. force makes a missing
// volume not an error (Docker's `volume rm -f`); it never removes a volume
// in use.
func (e *Engine) VolumeRemove(ctx context.Context, name string, force bool) error {
	s, err := e.volumes()
	if err != nil {
		return err
	}
	// The containers lock keeps a create from adding a user between the
	// check and the removal.
	unlockC, err := e.lockContainers()
	if err != nil {
		return err
	}
	defer unlockC()
	unlock, err := s.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := s.Get(name); err != nil {
		if force && errdefs.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	users, err := e.volumeUsers()
	if err != nil {
		return err
	}
	if ids := users[name]; len(ids) > 0 {
		short := make([]string, len(ids))
		for i, id := range ids {
			short[i] = id
		}
		return fmt.Errorf("remove %s: volume is in use - [%s]: %w", name, strings.Join(short, ", "), errdefs.ErrConflict)
	}
	if err := s.Remove(name); err != nil {
		return err
	}
	e.volumeEvent(events.ActionDestroy, name)
	return nil
}

// VolumePrune removes unused volumes: anonymous ones only unless all, as
// Docker since API 1.42. Labels filter as `--filter label=k[=v]` (all must
// match) and `label!=k[=v]`.
func (e *Engine) VolumePrune(ctx context.Context, all bool, labels, notLabels []string) (deleted []string, reclaimed uint64, err error) {
	s, err := e.volumes()
	if err != nil {
		return nil, 0, err
	}
	unlockC, err := e.lockContainers()
	if err != nil {
		return nil, 0, err
	}
	defer unlockC()
	unlock, err := s.Lock()
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	list, err := s.List()
	if err != nil {
		return nil, 0, err
	}
	users, err := e.volumeUsers()
	if err != nil {
		return nil, 0, err
	}
	// The label filters of the other prunes (volumes have no until).
	pf := pruneFilter{labels: labels, excluded: notLabels}
	var errs []error
	for _, v := range list {
		if len(users[v.Name]) > 0 || (!all && !v.Anonymous()) || pf.keeps(time.Time{}, v.Labels) {
			continue
		}
		size := dirSize(v.Mountpoint)
		if err := s.Remove(v.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		e.volumeEvent(events.ActionDestroy, v.Name)
		deleted = append(deleted, v.Name)
		reclaimed += uint64(size)
	}
	sort.Strings(deleted)
	return deleted, reclaimed, errors.Join(errs...)
}

// MatchLabels applies Docker's label filters: each of want ("k" or "k=v")
// must match, none of notWant may.
func MatchLabels(have map[string]string, want, notWant []string) bool {
	if !labelsMatch(want, have) {
		return false
	}
	for _, f := range notWant {
		if labelsMatch([]string{f}, have) {
			return false
		}
	}
	return true
}

// dirSize is the apparent size of the files under dir (what prune reclaims).
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// removeContainerVolumes is `rm -v`: the container's anonymous volumes go
// with it, unless another container mounts them too. Named volumes stay,
// as in Docker. It runs after the container's record is gone or going, so
// c itself is not counted as a user.
func removeContainerVolumes(ctx context.Context, e *Engine, c *Container) error {
	mps, err := containerMounts(c)
	if err != nil {
		return nil // a record we cannot parse never created volumes
	}
	s, err := e.volumes()
	if err != nil {
		return err
	}
	unlock, err := s.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	users, err := e.volumeUsers()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mps {
		if !m.Anonymous {
			continue
		}
		others := 0
		for _, id := range users[m.Source] {
			if id != c.ID {
				others++
			}
		}
		if others > 0 {
			continue
		}
		if err := s.Remove(m.Source); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		e.volumeEvent(events.ActionDestroy, m.Source)
	}
	return errors.Join(errs...)
}

// prepareCreate is the create-time half of the container's host settings:
// it checks every flag the spec will be built from (so a bad --cap-add or
// -v fails `create` with 125, as in Docker, not the first start), and
// creates the volumes the container names (named ones that do not exist
// yet, and its anonymous ones), so `volume ls` shows them and `rm -v` finds
// them before the first start. They are filled from the image at the first
// start (containerSpec), when the rootfs is mounted. Call it in Create with
// the complete record (image defaults merged, ID set) before the record is
// written.
func (e *Engine) prepareCreate(ctx context.Context, c *Container) error {
	if err := validateHostConfig(c); err != nil {
		return err
	}
	mps, err := containerMounts(c)
	if err != nil {
		return err
	}
	s, err := e.volumes()
	if err != nil {
		return err
	}
	for _, m := range mps {
		if m.Type != mount.TypeVolume {
			continue
		}
		labels := m.Labels
		if m.Anonymous {
			labels = map[string]string{volume.LabelAnonymous: ""}
		}
		v, created, err := s.Create(m.Source, volume.CreateOptions{Labels: labels, Options: m.DriverOpts})
		if err != nil {
			return fmt.Errorf("volume %s: %w", m.Source, err)
		}
		if created {
			e.volumeEvent(events.ActionCreate, v.Name)
		}
	}
	return nil
}

// containerSpec is buildSpec with the engine's part done first: it creates
// the container's volumes (named ones on first use, anonymous ones), mounts
// those with filesystem options, fills empty ones from the image's content
// at the mount path (unless nocopy), creates missing -v host directories,
// finds the --init binary and sets up --userns. Call it where buildSpec was
// called, with the container's rootfs mounted; call cleanup when the
// container's rootfs is unmounted (it undoes what the rootfs unmount does
// not cover; it is never nil).
func (e *Engine) containerSpec(ctx context.Context, c *Container, rootfs string) (_ *specs.Spec, cleanup func(), retErr error) {
	cleanup = func() {}
	env, err := e.prepareMounts(ctx, c, rootfs)
	if err != nil {
		return nil, cleanup, err
	}
	undo, err := e.prepareUserns(ctx, c, rootfs, &env)
	if err != nil {
		return nil, cleanup, err
	}
	cleanup = undo
	defer func() {
		if retErr != nil {
			cleanup()
			cleanup = func() {}
		}
	}()
	s, err := buildSpecEnv(c, rootfs, env)
	if err != nil {
		return nil, cleanup, err
	}
	// The network comes last: it is the slowest part to undo.
	netns, err := e.setupNetwork(ctx, c)
	if err != nil {
		return nil, cleanup, err
	}
	undoMounts := cleanup
	cleanup = func() {
		_ = e.teardownNetwork(context.WithoutCancel(ctx), c)
		undoMounts()
	}
	applyNetworkNamespace(s, c, netns)
	s.Mounts = append(s.Mounts, e.networkMounts(c)...)
	return s, cleanup, nil
}

// prepareMounts does the host side of the container's mounts and returns
// the spec environment for buildSpecEnv.
func (e *Engine) prepareMounts(ctx context.Context, c *Container, rootfs string) (specEnv, error) {
	env := specEnv{}
	if c.HostConfig.Init != nil && *c.HostConfig.Init {
		env.initPath = findInit()
	}
	mps, err := containerMounts(c)
	if err != nil {
		return env, err
	}
	s, err := e.volumes()
	if err != nil {
		return env, err
	}
	env.volumePath = func(name string) string { return filepath.Join(s.Dir(), name, "_data") }
	for _, m := range mps {
		switch m.Type {
		case mount.TypeBind:
			if _, err := os.Stat(m.Source); errors.Is(err, os.ErrNotExist) {
				if !m.CreateSrc {
					return env, fmt.Errorf("invalid mount config for type \"bind\": bind source path does not exist: %s: %w", m.Source, errdefs.ErrInvalidArgument)
				}
				// -v creates a missing host directory, as Docker does.
				if err := os.MkdirAll(m.Source, 0o755); err != nil {
					return env, fmt.Errorf("create bind source %s: %w", m.Source, err)
				}
			} else if err != nil {
				return env, fmt.Errorf("bind source %s: %w", m.Source, err)
			}
		case mount.TypeVolume:
			labels := m.Labels
			if m.Anonymous {
				labels = map[string]string{volume.LabelAnonymous: ""}
			}
			v, created, err := s.Create(m.Source, volume.CreateOptions{Labels: labels, Options: m.DriverOpts})
			if err != nil {
				return env, fmt.Errorf("volume %s: %w", m.Source, err)
			}
			if created {
				e.volumeEvent(events.ActionCreate, v.Name)
			}
			if err := s.Mount(v); err != nil {
				return env, err
			}
			if m.NoCopy {
				continue
			}
			// The image's content at the mount path, resolved inside the
			// rootfs so an image's symlink cannot point the copy at the host.
			src, err := securejoin.SecureJoin(rootfs, m.Destination)
			if err != nil {
				return env, err
			}
			if err := volume.Populate(v.Mountpoint, src); err != nil {
				return env, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		}
	}
	return env, nil
}

// findInit locates the berth-init binary like the runtime: beside the
// running executable, then $PATH; $BERTH_INIT overrides.
func findInit() string {
	if p := os.Getenv("BERTH_INIT"); p != "" {
		return p
	}
	p, err := filepath.Abs(findBinary("berth-init"))
	if err != nil {
		return ""
	}
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		return ""
	}
	return p
}
