//go:build !linux

package engine

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/moby/moby/api/types/container"
)

// The engine runs containers only on Linux; elsewhere it builds (so the
// module vets everywhere) and every operation that needs the kernel's
// pieces says so.

var errNotLinux = fmt.Errorf("containers need Linux, not %s: %w", runtime.GOOS, errdefs.ErrNotSupported)

func dialUnix(path string, timeout time.Duration) (*net.UnixConn, error) { return nil, errNotLinux }

func alive(pid int) bool { return false }

func findMonitorProc(bundle string) int { return 0 }

func waitExit(pid int, d time.Duration) bool { return true }

type stateWatch struct{}

func (e *Engine) watchState(id string) *stateWatch  { return nil }
func (w *stateWatch) close()                        {}
func (w *stateWatch) wait(pid int, d time.Duration) {}
func (w *stateWatch) exited() (monitor.State, bool) { return monitor.State{}, false }

func (e *Engine) StatPath(ctx context.Context, ref, p string) (container.PathStat, error) {
	return container.PathStat{}, errNotLinux
}
func (e *Engine) CopyFrom(ctx context.Context, ref, p string, w io.Writer) error { return errNotLinux }
func (e *Engine) CopyTo(ctx context.Context, ref, dir string, r io.Reader) error { return errNotLinux }
func (e *Engine) Diff(ctx context.Context, ref string) ([]container.FilesystemChange, error) {
	return nil, errNotLinux
}
