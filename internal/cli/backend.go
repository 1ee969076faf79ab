package cli

import (
	"context"
	"io"

	"github.com/berth-dev/berth/internal/client"
	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/enginetypes"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/imagearchive"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	volumetypes "github.com/moby/moby/api/types/volume"
)

// Backend is the engine surface the commands use. Two implementations: the
// engine in process (*engine.Engine, the default and the fast path) and
// internal/client, the same calls over the Docker Engine API to berthd
// (--host / BERTH_HOST), whose server calls the in-process engine. Behaviour
// lives once, in the engine; the e2e suite (test/engine) runs both ways.
type Backend interface {
	Close() error
	// Root, State and Driver describe the store for `info`.
	Root() string
	State() string
	Driver() string
	// Runtimes are the OCI runtimes containers may name, with the
	// executable each resolves to, and the default's name.
	Runtimes() (runtimes map[string]string, defaultName string)

	// Images.
	Pull(ctx context.Context, ref string, opts enginetypes.PullOptions) (enginetypes.PullResult, error)
	PullAllTags(ctx context.Context, repo string, opts enginetypes.PullOptions) (enginetypes.PullResult, error)
	Push(ctx context.Context, ref string, events func(enginetypes.Event)) (enginetypes.PushResult, error)
	PushAllTags(ctx context.Context, repo string, events func(enginetypes.Event)) ([]enginetypes.PushResult, error)
	Login(ctx context.Context, server, user, password string) error
	Logout(server string) error
	Images(ctx context.Context) ([]imagetypes.Summary, error)
	ImageInspect(ctx context.Context, ref string) (imagetypes.InspectResponse, error)
	History(ctx context.Context, ref string) ([]imagetypes.HistoryResponseItem, error)
	Tag(ctx context.Context, src, target string) error
	RemoveImage(ctx context.Context, ref string, force bool) ([]image.DeleteItem, error)
	PruneImages(ctx context.Context, filters map[string][]string) ([]image.DeleteItem, int64, error)
	Save(ctx context.Context, w io.Writer, refs []string, format imagearchive.Format) error
	Load(ctx context.Context, r io.Reader, events func(enginetypes.Event)) ([]string, error)
	Import(ctx context.Context, r io.Reader, ref string, opts imagearchive.ImportOptions) (string, error)
	DiskUsage(ctx context.Context) (enginetypes.DiskUsage, error)

	// Containers.
	Create(ctx context.Context, opts enginetypes.CreateOptions) (*enginetypes.Container, error)
	Start(ctx context.Context, ref string) error
	StartAttached(ctx context.Context, ref string, opts enginetypes.AttachOptions) (int, error)
	Attach(ctx context.Context, ref string, opts enginetypes.AttachOptions) error
	Resize(ctx context.Context, ref string, height, width uint) error
	Stop(ctx context.Context, ref string, opts enginetypes.StopOptions) error
	Restart(ctx context.Context, ref string, opts enginetypes.StopOptions) error
	Kill(ctx context.Context, ref, sig string) error
	Wait(ctx context.Context, ref string) (int, error)
	Remove(ctx context.Context, ref string, opts enginetypes.RemoveOptions) error
	Pause(ctx context.Context, ref string) error
	Unpause(ctx context.Context, ref string) error
	Rename(ctx context.Context, ref, name string) error
	Update(ctx context.Context, ref string, r container.Resources, restart *container.RestartPolicy) error
	List(ctx context.Context, opts enginetypes.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, ref string, size bool) (container.InspectResponse, error)
	Logs(ctx context.Context, ref string, opts enginetypes.LogsOptions, stdout, stderr io.Writer) error
	Exec(ctx context.Context, ref string, opts enginetypes.ExecOptions, stdin io.Reader, stdout, stderr io.Writer) (int, error)
	Top(ctx context.Context, ref string, psArgs []string) (container.TopResponse, error)
	ContainerStats(ctx context.Context, ref string) (enginetypes.Stats, error)
	StatPath(ctx context.Context, ref, p string) (container.PathStat, error)
	CopyFrom(ctx context.Context, ref, p string, w io.Writer) error
	CopyTo(ctx context.Context, ref, dir string, r io.Reader) error
	Export(ctx context.Context, ref string, w io.Writer) error
	Diff(ctx context.Context, ref string) ([]container.FilesystemChange, error)
	Commit(ctx context.Context, ref string, opts enginetypes.CommitOptions) (string, error)
	PruneContainers(ctx context.Context, filters map[string][]string) (container.PruneReport, error)
	Events(ctx context.Context, opts enginetypes.EventsOptions, fn func(events.Message) error) error

	// Volumes.
	VolumeCreate(ctx context.Context, o volumetypes.CreateRequest) (volumetypes.Volume, error)
	VolumeInspect(ctx context.Context, name string) (volumetypes.Volume, error)
	VolumeList(ctx context.Context) ([]volumetypes.Volume, error)
	VolumeRemove(ctx context.Context, name string, force bool) error
	VolumePrune(ctx context.Context, all bool, labels, notLabels []string) (deleted []string, reclaimed uint64, err error)
}

var (
	_ Backend = (*engine.Engine)(nil)
	_ Backend = (*client.Client)(nil)
)
