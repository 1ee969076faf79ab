// Package build turns a Dockerfile and a build context into an image: the
// Dockerfile is parsed by BuildKit's maintained parser (frontend/dockerfile/
// parser and instructions), the executor is ours.
//
// Every instruction is one step on a stage's state (an image config plus its
// layers). A step's result is cached under a content key: the parent state's
// key, the instruction after variable expansion, the build args in scope and,
// for COPY/ADD, a checksum of every copied file's name, mode, owner and bytes
// (never its mtime). A hit replaces the state with the cached one, so a fully
// cached rebuild produces the same config bytes and so the same image ID.
//
// Filesystem steps (RUN, COPY, ADD, WORKDIR) run on an active overlay
// snapshot on top of the parent's layers: COPY/ADD apply a tar of the selected
// files with archive.Apply (openat2 RESOLVE_IN_ROOT, so nothing is written
// outside the rootfs whatever symlinks the image holds; sources resolve inside
// the context, so nothing outside it is read), RUN runs the command through the
// Executor (the engine's OCI runtime). The snapshot's upper directory is then
// diffed into a layer blob (archive.Diff, as commit does) and committed under
// its chain ID, so the next step, the final image and later builds share it.
//
// State under <root>/build-cache: index/<key>.json (one cache entry per step,
// written atomically), mounts/<id> (RUN --mount=type=cache directories) and
// tmp/ (mount points of steps in flight). Independent stages build in
// parallel; stages the target does not need are skipped.
package build

import (
	"context"
	"io"
	"strconv"

	"github.com/berth-dev/berth/internal/image"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Options describe one build.
type Options struct {
	// ContextDir is the build context directory. ContextTar, if set
	// instead, is a (possibly compressed) tar of the context. Neither: no
	// context (the Dockerfile came on stdin).
	ContextDir string
	ContextTar io.Reader
	// Dockerfile is the Dockerfile's path inside the context (default
	// "Dockerfile"); DockerfileContent, when set, is the Dockerfile itself.
	Dockerfile        string
	DockerfileContent []byte
	// DockerignoreContent is the Dockerfile's own ignore file
	// (NAME.dockerignore beside it) when the Dockerfile comes from
	// outside the context; it wins over the context's .dockerignore. With
	// DockerfileContent set, no NAME.dockerignore is looked up in the
	// context: the Dockerfile does not live there.
	DockerignoreContent []byte
	Tags                []string
	BuildArgs           map[string]string
	Target              string
	Labels              map[string]string
	NoCache             bool
	Pull                bool
	// Platform must be empty or the host's (os/arch).
	Platform string
	// Secrets maps a secret id to the host file RUN --mount=type=secret reads.
	Secrets map[string]string
	// Progress receives human progress (nil: none). Plain selects one line
	// per event; it is the only format, auto maps to it.
	Progress io.Writer
}

// Result is the built image.
type Result struct {
	ID    string   // config digest
	Names []string // normalized tags
}

// Executor runs one RUN step's process to completion. The engine implements
// it with its spec builder and the OCI runtime; no monitor is needed, the
// caller waits.
type Executor interface {
	// Run returns nil when the process exits 0 and an *ExitError when it
	// exits otherwise. Nothing of the process is left when Run returns.
	Run(ctx context.Context, p Process) error
}

// Process is one RUN step.
type Process struct {
	Rootfs   string // the mounted rootfs
	Args     []string
	Env      []string
	User     string // Docker's user forms, resolved in the rootfs
	Cwd      string
	Hostname string
	// Network is "none" (a new network namespace with only lo) or "host"
	// (the default, RUN --network=default and host).
	Network string
	Mounts  []specs.Mount // RUN --mount mounts, added after the defaults
	Stdout  io.Writer
	Stderr  io.Writer
}

// ExitError is a RUN step whose process exited non-zero.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return "exit code: " + strconv.Itoa(e.Code) }

// ImageSource resolves a FROM (or COPY --from) image reference: the local
// store, pulling when the image is missing or pull is set.
type ImageSource interface {
	Resolve(ctx context.Context, ref string, pull bool, progress io.Writer) (image.Image, error)
}

// Builder builds images into an image store.
type Builder struct {
	Root   string // the engine root; the cache lives in Root/build-cache
	Images *image.Store
	Exec   Executor
	Source ImageSource
}
