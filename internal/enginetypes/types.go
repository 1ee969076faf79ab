// Package enginetypes holds the plain data the engine's callers exchange with
// it: options, results and records. It sits below both the engine (the
// in-process implementation) and internal/client (the same surface over the
// Docker Engine API), so `berth` can hold either behind one interface
// (cli.Backend) without the client importing the engine. Types here carry no
// behaviour beyond formatting; the engine re-exports them as aliases.
package enginetypes

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/opencontainers/go-digest"
)

// ErrDetached is returned by Attach and StartAttached when the user typed
// the detach keys: the container keeps running.
var ErrDetached = errors.New("detached from container")

// Event reports progress of one blob in a pull, push or load, in the shape
// of Docker's JSON progress messages: ID is the short digest, Status the
// action ("Downloading", "Pull complete", "Pushed", …), Current/Total bytes.
type Event struct {
	ID      string
	Status  string
	Current int64
	Total   int64
}

// UnderWay reports the statuses docker draws with a progress bar
// (Downloading, Extracting, Pushing); the others are a layer's steps and
// ends, shown as words only.
func (e Event) UnderWay() bool {
	return e.Status == "Downloading" || e.Status == "Extracting" || e.Status == "Pushing"
}

// PullOptions tune Pull.
type PullOptions struct {
	// Platform is "os/arch[/variant]"; "" picks the host's.
	Platform string
	// Events receives per-layer progress; it may be nil. Calls are serialized.
	Events func(Event)
	// Auth are credentials the caller brought (berthd: X-Registry-Auth);
	// registries they do not cover use the engine's own config.json.
	Auth registry.Credentials
}

// PullResult says what a pull did.
type PullResult struct {
	Name     string // normalized reference pulled
	Digest   string // repo@sha256:… of what the reference resolved to
	ImageID  string
	UpToDate bool // the store already had exactly this image under Name
}

// Status is docker's closing line of a pull for name (the familiar form
// the caller shows): "Status: Downloaded newer image for NAME", or "Status:
// Image is up to date for NAME" when nothing was new.
func (r PullResult) Status(name string) string {
	if r.UpToDate {
		return "Status: Image is up to date for " + name
	}
	return "Status: Downloaded newer image for " + name
}

// PushResult says what a push stored.
type PushResult struct {
	Name   string
	Tag    string
	Digest digest.Digest
	Size   int64
}

// CreateOptions describe a new container (Docker's create request).
type CreateOptions struct {
	Name       string
	Config     container.Config
	HostConfig container.HostConfig
	// NetworkingConfig carries endpoint settings (aliases, static
	// addresses, MAC) by network, as in Docker's request: the network
	// HostConfig.NetworkMode names and, since API 1.44, further networks
	// the container is connected to when it starts; nil when there are none.
	NetworkingConfig *network.NetworkingConfig
	// ReadOnlyNonRecursive keeps read-only binds read-only at their top
	// only, as every read-only bind was before API 1.44: berthd sets it
	// for older clients, as dockerd does, so their submounts stay as they
	// were.
	ReadOnlyNonRecursive bool
}

// ExitError carries a container's exit status (or Docker's 126/127 when the
// command could not be started).
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

// DiskUsage is `system df`'s data.
type DiskUsage struct {
	Images         image.DiskUsage
	Containers     []*Container
	ContainersSize int64 // bytes in containers' writable layers
}

// Stats is one sample of a container's cgroup counters.
type Stats struct {
	ID, Name   string
	Read       time.Time
	CPUNanos   uint64 // total CPU time used
	MemUsage   uint64
	MemLimit   uint64
	MemCache   uint64
	Pids       uint64
	BlkRead    uint64
	BlkWrite   uint64
	OnlineCPUs int
}

// EventsOptions select events like `docker events`.
type EventsOptions struct {
	Since, Until time.Time // zero: no bound; without Until and Follow, stop at the end
	Follow       bool      // keep reading new events (until ctx ends or Until passes)
	Filter       func(events.Message) bool
}

// ExecOptions are `docker exec` flags.
type ExecOptions struct {
	Cmd        []string
	Tty        bool
	Detach     bool
	Env        []string
	User       string
	WorkingDir string
	Privileged bool
}

// CommitOptions are `docker commit` flags.
type CommitOptions struct {
	Reference string // repository[:tag]; "" makes an untagged image
	Comment   string
	Author    string
	Pause     bool
	// Config, when set, replaces the new image's run config (the API's
	// request body).
	Config *container.Config
	// Changes are Dockerfile instructions applied to the new image's
	// config last (--change: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER,
	// VOLUME, WORKDIR).
	Changes []string
}

// StopOptions are Docker's stop parameters.
type StopOptions struct {
	Signal  string // default: the container's stop signal, then SIGTERM
	Timeout *int   // seconds; default: the container's StopTimeout, then 10; -1 waits forever
}

// RemoveOptions are Docker's rm flags.
type RemoveOptions struct {
	Force   bool // kill a running container first
	Volumes bool // remove the container's anonymous volumes
}

// LogsOptions are `docker logs` flags.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Tail           int // lines from the end; < 0 means all
	Timestamps     bool
	Since, Until   time.Time
}

// ListOptions are `docker ps` flags. Filters use Docker's names: status,
// name, id, label, ancestor, exited, before, since, health.
type ListOptions struct {
	All     bool
	Size    bool
	Limit   int // -n: the N most recently created (all states); 0 = no limit
	Filters map[string][]string
}

// Container is a container's durable record: <root>/containers/<id>/container.json.
// The configuration uses the Docker Engine API's types, so `inspect`, `ps`
// and the API server share one model.
type Container struct {
	ID         string
	Name       string
	Created    time.Time
	ImageRef   string // the image as the user named it
	ImageID    string
	Config     container.Config
	HostConfig container.HostConfig
	// RuntimePath is the OCI runtime executable HostConfig.Runtime named,
	// resolved at create; empty for the engine's default runtime and in
	// records of older builds, which follow the engine's default.
	RuntimePath string `json:",omitempty"`
	// Endpoints are the create request's endpoint settings by network
	// name, validated. They live in this record, written atomically at
	// create, so a create killed midway leaves nothing half made; the
	// network record (network.json) supersedes them once it exists (first
	// start, connect, disconnect).
	Endpoints map[string]*network.EndpointSettings `json:",omitempty"`
	// ReadOnlyRecursive says the container's read-only binds and volumes
	// are recursively read-only (mount option "rro"), submounts included.
	// Create sets it unless the request asked for Docker's behaviour
	// before API 1.44 or the kernel or runtime cannot do it; records of
	// older builds lack it and keep their read-only-at-the-top mounts.
	ReadOnlyRecursive bool `json:",omitempty"`
	// Snapshot is the key of the container's writable snapshot.
	Snapshot string
	// Driver is the snapshotter that holds Snapshot.
	Driver string
	// Paused is set while the engine has the container's cgroup frozen.
	Paused bool `json:",omitempty"`
	// LastState is the last final state the engine saw (monitor.json
	// lives on the state directory, which a reboot clears).
	LastState *monitor.State `json:",omitempty"`
}

// AttachOptions connect a caller's streams to a container.
type AttachOptions struct {
	Stdin          io.Reader // nil: stdin is not attached
	Stdout, Stderr io.Writer
	// DetachKeys end the attachment without stopping the container (only
	// with a terminal, as in Docker); nil means DefaultDetachKeys.
	DetachKeys []byte
}
