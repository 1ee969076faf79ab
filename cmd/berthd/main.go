// Command berthd serves the berth engine over the Docker Engine API on a
// unix socket, for `berth --host`, the docker CLI and other API clients.
// Containers do not depend on it: each has its own monitor, which enforces
// restart policies, so stopping berthd leaves them running.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/engine"
	"golang.org/x/sys/unix"
)

const defaultHost = "unix:///run/berth/berth.sock"

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	root := flag.String("root", envOr("BERTH_ROOT", engine.DefaultRoot), "store directory (images, containers) [$BERTH_ROOT]")
	state := flag.String("state", envOr("BERTH_STATE", engine.DefaultState), "runtime state directory [$BERTH_STATE]")
	host := flag.String("host", defaultHost, "socket to serve the API on (unix://PATH)")
	group := flag.String("group", "berth", "group given access to the socket when it exists (else root only)")
	insecure := flag.String("insecure-registry", os.Getenv("BERTH_INSECURE_REGISTRIES"), "comma-separated registries to reach over plain HTTP [$BERTH_INSECURE_REGISTRIES]")
	flag.Parse()
	if err := run(*root, *state, *host, *group, *insecure); err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(1)
	}
}

func run(root, state, host, group, insecure string) error {
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok || path == "" {
		return fmt.Errorf("--host %q: only unix:///path sockets are supported", host)
	}
	var reg []string
	if insecure != "" {
		reg = strings.Split(insecure, ",")
	}
	e, err := engine.Open(engine.Options{Root: root, State: state, Insecure: reg})
	if err != nil {
		return err
	}
	defer e.Close()
	if lost := e.DiscardedImages(); len(lost) > 0 {
		fmt.Fprintf(os.Stderr, "berthd: removed images whose layers a reboot cut short (pull them again): %s\n", strings.Join(lost, ", "))
	}
	// Signals are caught before the socket exists: a SIGINT right after
	// it was created would otherwise kill the daemon without removing it.
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	ln, closeLn, err := api.ListenUnix(path, group)
	if err != nil {
		return err
	}
	defer closeLn()
	srv := &http.Server{Handler: api.New(e), ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(os.Stderr, "berthd: serving the Docker Engine API on %s (root %s, state %s)\n", host, root, state)
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
	}
	// Streams (logs -f, attach, events) end with the process; give plain
	// requests a moment to finish. Containers are not touched.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	// Pulls that finished just now are flushed in the background; make
	// them durable before the daemon goes.
	e.Flush()
	return nil
}
