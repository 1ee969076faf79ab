package engine

import "github.com/berth-dev/berth/internal/enginetypes"

// The engine's options, results and records are defined in enginetypes so
// internal/client can produce the same values over HTTP; these aliases keep
// engine.X working for every caller.
type (
	AttachOptions = enginetypes.AttachOptions
	CommitOptions = enginetypes.CommitOptions
	Container     = enginetypes.Container
	CreateOptions = enginetypes.CreateOptions
	DiskUsage     = enginetypes.DiskUsage
	Event         = enginetypes.Event
	EventsOptions = enginetypes.EventsOptions
	ExecOptions   = enginetypes.ExecOptions
	ExitError     = enginetypes.ExitError
	ListOptions   = enginetypes.ListOptions
	LogsOptions   = enginetypes.LogsOptions
	PullOptions   = enginetypes.PullOptions
	PullResult    = enginetypes.PullResult
	PushResult    = enginetypes.PushResult
	RemoveOptions = enginetypes.RemoveOptions
	Stats         = enginetypes.Stats
	StopOptions   = enginetypes.StopOptions
)

// ErrDetached is enginetypes.ErrDetached (errors.Is matches either name).
var ErrDetached = enginetypes.ErrDetached
